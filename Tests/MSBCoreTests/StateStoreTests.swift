import Foundation
import Testing
@testable import MSBCore
import MSBOS

@Suite struct StateStoreTests {
    let paths: MSBPaths

    init() {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("msb-store-\(UUID().uuidString)").path
        paths = MSBPaths(environment: ["MSB_HOME": dir])
    }

    func record(_ name: String) -> SandboxRecord {
        SandboxRecord(config: SandboxConfig(name: name, environment: ["A=1"]), status: .created, createdAt: Date())
    }

    @Test func insertGetUpdateDelete() throws {
        let store = try StateStore(paths: paths)
        try store.insert(record("one"))
        #expect(try store.get("one")?.config.environment == ["A=1"])
        try store.update("one") { $0.status = .stopped; $0.statusReason = "why" }
        #expect(try store.get("one")?.status == .stopped)
        #expect(try store.get("one")?.statusReason == "why")
        try store.delete("one")
        #expect(try store.get("one") == nil)
    }

    @Test func duplicateNameIsRefusedAndKeepsTheFirst() throws {
        let store = try StateStore(paths: paths)
        try store.insert(record("dup"))
        var second = record("dup")
        second.config.memoryMiB = 1024
        let error = #expect(throws: MSBError.self) { try store.insert(second) }
        #expect(error?.message == "sandbox already exists: dup")
        #expect(try store.get("dup")?.config.memoryMiB == 512)
    }

    @Test func stateFilesAreOwnerOnly() throws {
        _ = try StateStore(paths: paths)
        let home = try FileManager.default.attributesOfItem(atPath: paths.home)[.posixPermissions] as? Int
        let db = try FileManager.default.attributesOfItem(atPath: paths.database)[.posixPermissions] as? Int
        #expect(home == 0o700)
        #expect(db == 0o600)
    }

    @Test func concurrentWritersLoseNothing() throws {
        let paths = self.paths
        _ = try StateStore(paths: paths)
        let errors = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            do {
                let store = try StateStore(paths: paths)
                for i in 0..<25 {
                    try store.insert(SandboxRecord(config: SandboxConfig(name: "w\(worker)-\(i)"), status: .created, createdAt: Date()))
                    try store.update("w\(worker)-\(i)") { $0.status = .stopped }
                }
            } catch {
                errors.increment()
            }
        }
        #expect(errors.value == 0)
        let all = try StateStore(paths: paths).list()
        #expect(all.count == 200)
        #expect(all.allSatisfy { $0.status == .stopped })
    }

    @Test func deadSupervisorIsReportedAsCrashed() throws {
        var running = record("ghost")
        running.status = .running
        // A pid that cannot be alive with these start ticks.
        running.supervisor = ProcessIdentity(pid: 999_999, startTicks: 1)
        let truth = running.reconciled()
        #expect(truth.status == .crashed)
        #expect(truth.statusReason?.contains("exited unexpectedly") == true)

        var alive = record("self")
        alive.status = .running
        alive.supervisor = ProcessIdentity.of(pid: getpid())
        #expect(alive.reconciled().status == .running)
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
