import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
import Testing

/// `LocalBackend.wait` without VMs: a `sleep` stands in for a sandbox's supervisor. The
/// wait wakes when that process exits (a pidfd), not at its timeout, and reads how the
/// sandbox ended from its record.
@Suite struct LocalBackendWaitTests {
    let paths: MSBPaths

    init() {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("msb-wait-\(UUID().uuidString)").path
        paths = MSBPaths(environment: ["MSB_HOME": dir])
    }

    /// A running sandbox whose supervisor is a `sleep` child of the test.
    func runningSandbox(_ name: String) throws -> ChildProcess {
        let child = try ChildProcess.spawn(SpawnSpec("/bin/sleep", arguments: ["sleep", "30"]))
        let identity = try #require(ProcessIdentity.of(pid: child.pid))
        try StateStore(paths: paths).insert(SandboxRecord(config: SandboxConfig(name: name), status: .running, createdAt: Date(),
                                                          supervisor: identity))
        return child
    }

    @Test func aSandboxThatIsNotRunningIsAnsweredAtOnce() throws {
        let store = try StateStore(paths: paths)
        try store.insert(SandboxRecord(config: SandboxConfig(name: "done"), status: .stopped, statusReason: "stopped by user", createdAt: Date()))
        try store.insert(SandboxRecord(config: SandboxConfig(name: "new"), status: .created, createdAt: Date()))
        let started = MonotonicClock.now()
        #expect(try LocalBackend(paths: paths).wait("done", timeoutSeconds: 30).status == .stopped)
        #expect(try LocalBackend(paths: paths).wait("new", timeoutSeconds: 30).status == .created)
        #expect(MonotonicClock.now() - started < 5)
        #expect(throws: MSBError.self) { try LocalBackend(paths: paths).wait("ghost", timeoutSeconds: 1) }
    }

    @Test func whenTheTimeRunsOutTheSandboxIsStillRunning() throws {
        let child = try runningSandbox("web")
        defer { _ = child.terminate(graceSeconds: 0) }
        let started = MonotonicClock.now()
        #expect(try LocalBackend(paths: paths).wait("web", timeoutSeconds: 0.2).status == .running)
        let took = MonotonicClock.now() - started
        #expect(took >= 0.2 && took < 5)
    }

    @Test func theWaitWakesWhenTheSupervisorExitsAndReadsTheOutcome() throws {
        let child = try runningSandbox("web")
        let paths = paths
        // What a supervisor does at the end: record the outcome, then exit.
        let finisher = Thread {
            usleep(300_000)
            _ = try? StateStore(paths: paths).update("web") { record in
                record.status = .stopped
                record.statusReason = "stopped by user"
                record.supervisor = nil
            }
            _ = child.signal(SIGKILL)
        }
        let started = MonotonicClock.now()
        finisher.start()
        let info = try LocalBackend(paths: paths).wait("web", timeoutSeconds: 20)
        _ = child.wait()
        #expect(info.status == .stopped)
        #expect(info.statusReason == "stopped by user")
        #expect(MonotonicClock.now() - started < 10)
    }

    @Test func aSupervisorThatDiesWithoutAWordLeavesACrashedSandbox() throws {
        let child = try runningSandbox("web")
        let killer = Thread {
            usleep(300_000)
            _ = child.signal(SIGKILL)
        }
        let started = MonotonicClock.now()
        killer.start()
        let info = try LocalBackend(paths: paths).wait("web", timeoutSeconds: 20)
        _ = child.wait()
        #expect(info.status == .crashed)
        #expect(MonotonicClock.now() - started < 10)
    }
}
