import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// `msb drain` against the fake backend: every sandbox drains first, then each is waited on.
@Suite struct DrainCommandTests {
    let harness = FakeBackendCommandTests()

    @Test func drainsThenWaitsAndPrintsEachNameOnceStopped() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running), FakeBackend.info("db", .running)])
        backend.queueWaits("web", [.draining, .stopping, .stopped])
        backend.queueWaits("db", [.stopped])
        let result = harness.run(["drain", "--timeout", "90s", "web", "db"], backend)
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out == "web\ndb\n" && result.err.isEmpty)
        // Both drain before the first wait: they finish their work side by side.
        #expect(backend.calls == ["drain web timeout=90.0s", "drain db timeout=90.0s", "wait web", "wait web", "wait web", "wait db"])
    }

    @Test func noWaitReturnsOnceDraining() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let result = harness.run(["drain", "--no-wait", "web"], backend)
        #expect(result.status == 0 && result.out == "web\n")
        #expect(backend.calls == ["drain web timeout=none"])
    }

    @Test func aSandboxThatCrashesWhileDrainingIsExitCode4() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        backend.queueWaits("web", [.crashed])
        let result = harness.run(["drain", "web"], backend)
        #expect(result.status == CLI.ExitCode.sandboxCrashed)
        #expect(result.out.isEmpty && result.err.hasPrefix("error: sandbox web crashed"))
    }

    @Test func badInputNeverReachesTheBackend() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let badTimeout = harness.run(["drain", "--timeout", "soon", "web"], backend)
        #expect(badTimeout.status == 2)
        let badName = harness.run(["drain", "../web"], backend)
        #expect(badName.status == 2)
        #expect(backend.calls.isEmpty)
    }
}
