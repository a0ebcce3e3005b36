import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// `msb wait` and `msb inspect` against the fake backend: exact messages and exit codes.
@Suite struct WaitInspectCommandTests {
    let harness = FakeBackendCommandTests()

    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        harness.run(arguments, backend)
    }

    @Test func waitReturnsZeroOnceTheSandboxHasStopped() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        backend.queueWaits("web", [.running, .stopping, .stopped])
        let result = run(["wait", "web"], backend)
        #expect(result.status == 0)
        #expect(result.out.isEmpty && result.err.isEmpty)
        #expect(backend.calls == ["wait web", "wait web", "wait web"])
        // Every call is bounded: nothing waits without a deadline.
        #expect(backend.askedWaitSeconds.allSatisfy { $0 > 0 && $0 <= WaitCommand.callSeconds })
    }

    @Test func aSandboxThatNeverRanOrHasStoppedReturnsAtOnce() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("new", .created), FakeBackend.info("old", .stopped)])
        let result = run(["wait", "new", "old"], backend)
        #expect(result.status == 0)
        #expect(backend.calls == ["wait new", "wait old"])
    }

    @Test func aCrashIsItsOwnExitCodeWithTheReason() {
        var crashed = FakeBackend.info("web", .crashed)
        crashed.statusReason = "the VM exited with status 1"
        let backend = FakeBackend(sandboxes: [crashed])
        let result = run(["wait", "web"], backend)
        #expect(result.status == CLI.ExitCode.sandboxCrashed)
        #expect(result.status == 4)
        #expect(result.err == "error: sandbox web crashed: the VM exited with status 1\n  → run 'msb start web' to boot it again\n")
        #expect(result.out.isEmpty)
    }

    @Test func theTimeoutIsItsOwnErrorAndExitCode() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let started = Date()
        let result = run(["wait", "--timeout", "300ms", "web"], backend)
        #expect(result.status == 124)
        #expect(result.err == "error: timed out after 0.3s waiting for sandbox web to stop\n  → stop it with 'msb stop web', or wait longer with --timeout\n")
        // The backend answered at once each time: the loop paused instead of spinning.
        #expect(backend.calls.count < 10)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(backend.askedWaitSeconds.allSatisfy { $0 >= 0 && $0 <= 0.3 })
    }

    @Test func severalNamesReportEachFailureAndExitWithTheHighestCode() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .stopped), FakeBackend.info("db", .crashed)])
        let result = run(["wait", "web", "ghost", "db"], backend)
        #expect(backend.calls == ["wait web", "wait ghost", "wait db"])
        #expect(result.err == """
            error: sandbox not found: ghost
              → run 'msb ls' to see sandboxes
            error: sandbox db crashed
              → run 'msb start db' to boot it again

            """)
        #expect(result.status == 4)
    }

    @Test func usageErrorsOfWaitReachNothing() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let noName = run(["wait"], backend)
        #expect(noName.status == 2)
        let badTimeout = run(["wait", "--timeout", "-1", "web"], backend)
        #expect(badTimeout.status == 2)
        #expect(badTimeout.err.hasPrefix("error: "))
        let badName = run(["wait", "web", "../x"], backend)
        #expect(badName.status == 2)
        #expect(backend.calls.isEmpty)
    }

    @Test func inspectPrintsTheConfigAndStateAsOneJSONObject() throws {
        var info = FakeBackend.info("web", .running)
        info.config.cpus = 2
        info.config.environment = ["MODE=test"]
        info.config.snapshot = "ready"
        info.config.accelerator = .tcg
        info.statusReason = nil
        let backend = FakeBackend(sandboxes: [info])
        let result = run(["inspect", "web"], backend)
        #expect(result.status == 0)
        #expect(result.err.isEmpty)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(object["name"] as? String == "web")
        #expect(object["status"] as? String == "running")
        #expect(object["running"] as? Bool == true)
        #expect(object["cpus"] as? Int == 2)
        #expect(object["envs"] as? [String] == ["MODE=test"])
        #expect(object["snapshot"] as? String == "ready")
        #expect(object["accel"] as? String == "tcg")
        #expect(object["created_at"] as? String == "2023-11-14T22:13:20Z")
        // What ls --format json prints for the same sandbox, field for field.
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(run(["ls", "--format", "json"], backend).out.utf8)) as? [[String: Any]])
        let canonical = { (value: Any) in try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) }
        #expect(try canonical(listed[0]) == canonical(object))
    }

    @Test func inspectOfAnUnknownSandboxSaysSo() {
        let backend = FakeBackend(sandboxes: [])
        let result = run(["inspect", "ghost"], backend)
        #expect(result.status == 1)
        #expect(result.out.isEmpty)
        #expect(result.err == "error: sandbox not found: ghost\n  → run 'msb ls' to see sandboxes\n")
        #expect(run(["inspect"], backend).status == 2)
        #expect(run(["inspect", "a", "b"], backend).status == 2)
    }
}
