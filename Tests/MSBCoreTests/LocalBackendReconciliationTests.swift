import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
import Testing

/// `LocalBackend` tells the truth whatever the database says: a sandbox whose supervisor
/// is gone (a recycled pid included) reads as crashed, and the correction is written back.
@Suite struct LocalBackendReconciliationTests {
    let paths: MSBPaths

    init() {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("msb-reconcile-\(UUID().uuidString)").path
        paths = MSBPaths(environment: ["MSB_HOME": dir])
    }

    /// A process that has already ended and been reaped: its identity names no one.
    static func deadProcess() throws -> ProcessIdentity {
        let child = try ChildProcess.spawn(SpawnSpec("/bin/true"))
        let identity = ProcessIdentity.of(pid: child.pid) ?? ProcessIdentity(pid: child.pid, startTicks: 1)
        _ = child.wait()
        return identity
    }

    @Test func aRunningRecordWhoseSupervisorDiedReadsAsCrashedAndIsWrittenBack() throws {
        let dead = try Self.deadProcess()
        let store = try StateStore(paths: paths)
        try store.insert(SandboxRecord(config: SandboxConfig(name: "ghost"), status: .running, createdAt: Date(), supervisor: dead))
        let listed = try LocalBackend(paths: paths).list()
        #expect(listed.map(\.status) == [.crashed])
        #expect(listed.first?.statusReason == "supervisor process (pid \(dead.pid)) exited unexpectedly")
        let stored = try store.get("ghost")
        #expect(stored?.status == .crashed)
        #expect(stored?.supervisor == nil)
    }

    @Test func aRecycledPidIsNotTakenForTheSupervisor() throws {
        // This very process, but with another start time: the pid was reused.
        let me = try #require(ProcessIdentity.of(pid: getpid()))
        let impostor = ProcessIdentity(pid: me.pid, startTicks: me.startTicks + 1)
        try StateStore(paths: paths).insert(SandboxRecord(
            config: SandboxConfig(name: "recycled"), status: .running, createdAt: Date(), supervisor: impostor))
        #expect(try LocalBackend(paths: paths).inspect("recycled").status == .crashed)
    }

    @Test func aLiveSupervisorKeepsTheSandboxRunning() throws {
        let me = try #require(ProcessIdentity.of(pid: getpid()))
        try StateStore(paths: paths).insert(SandboxRecord(
            config: SandboxConfig(name: "alive"), status: .running, createdAt: Date(), supervisor: me))
        #expect(try LocalBackend(paths: paths).inspect("alive").status == .running)
    }

    @Test func stoppedRecordsAreLeftAsTheyAre() throws {
        try StateStore(paths: paths).insert(SandboxRecord(
            config: SandboxConfig(name: "done"), status: .stopped, statusReason: "stopped by user", createdAt: Date()))
        let info = try LocalBackend(paths: paths).inspect("done")
        #expect(info.status == .stopped)
        #expect(info.statusReason == "stopped by user")
    }

    /// `rm` frees the name and the directory in one step under the record's lock; what a
    /// killed remove left aside goes with the next one.
    @Test func removeTakesTheDirectoryAwayWithTheRecordAndSweepsLeftovers() throws {
        let store = try StateStore(paths: paths)
        try store.insert(SandboxRecord(config: SandboxConfig(name: "old"), status: .stopped, createdAt: Date()))
        let fm = FileManager.default
        try fm.createDirectory(atPath: paths.sandboxDirectory("old"), withIntermediateDirectories: true)
        try fm.createDirectory(atPath: paths.sandboxesDirectory + "/.removed-gone-1", withIntermediateDirectories: true)
        try LocalBackend(paths: paths).remove("old", force: false)
        #expect(try store.get("old") == nil)
        #expect(try fm.contentsOfDirectory(atPath: paths.sandboxesDirectory).isEmpty)
    }

    @Test func aDeleteWhoseCheckFailsUnderTheLockKeepsTheRecord() throws {
        let store = try StateStore(paths: paths)
        try store.insert(SandboxRecord(config: SandboxConfig(name: "busy"), status: .stopped, createdAt: Date()))
        #expect(throws: MSBError.self) {
            try store.delete("busy") { (_: SandboxRecord) throws(MSBError) in throw MSBError(.invalidState, "started again") }
        }
        #expect(try store.get("busy") != nil)
    }
}
