import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// `msb inspect` against the fake backend: exact messages and exit codes.
@Suite struct WaitInspectCommandTests {
    let harness = FakeBackendCommandTests()

    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        harness.run(arguments, backend)
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
