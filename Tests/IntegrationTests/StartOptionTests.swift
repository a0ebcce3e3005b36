import Foundation
import Testing

/// The SDKs' start options on real microVMs, through the CLI and through `sandbox.start`:
/// `hostname`, `idle_timeout`, `depends_on`, `replace`, and a changed `config` applied to a
/// stopped sandbox. Boots are shared: each sandbox is reused for several options.
@Suite(.serialized) struct StartOptionTests {
    static func inspect(_ name: String) throws -> [String: Any] {
        let out = try MSBHarness.run(["inspect", name]).stdout
        return try JSONSerialization.jsonObject(with: out) as? [String: Any] ?? [:]
    }

    static let hostnameCommand = ["cat", "/proc/sys/kernel/hostname"]

    @Test func throughTheCLI() throws {
        let a = MSBHarness.uniqueName("opta"), b = MSBHarness.uniqueName("optb")
        defer { for name in [a, b] { _ = try? MSBHarness.run(["rm", "-f", name]) } }

        // --hostname and --idle-timeout: the guest is called so; an exec longer than the idle
        // time keeps it, and it stops once idle for that long after the exec ended.
        try MSBHarness.ok(["create", "--name", a, "--hostname", "web-1.test", "--idle-timeout", "4"])
        #expect(try MSBHarness.ok(["exec", a, "--"] + Self.hostnameCommand) == "web-1.test\n")
        try MSBHarness.ok(["exec", a, "--", "sleep", "6"])
        let execEnded = Date()
        #expect(try Self.inspect(a)["status"] as? String == "running")
        try MSBHarness.ok(["wait", "--timeout", "60s", a])
        #expect(Date().timeIntervalSince(execEnded) >= 3)
        let stopped = try Self.inspect(a)
        #expect(stopped["status"] as? String == "stopped")
        #expect(stopped["status_reason"] as? String == "stopped: idle for 4s")
        #expect(stopped["hostname"] as? String == "web-1.test" && stopped["idle_timeout_ms"] as? Int == 4000)

        // --depends-on: the stopped dependency starts first.
        try MSBHarness.ok(["create", "--name", b, "--depends-on", a])
        #expect(try Self.inspect(a)["status"] as? String == "running")
        #expect(try Self.inspect(b)["depends_on"] as? [String] == [a])
        // Unknown names and cycles are refused before anything changes.
        let unknown = try MSBHarness.run(["create", "--name", MSBHarness.uniqueName("optc"), "--depends-on", "no-such-box"])
        #expect(unknown.status == 1 && unknown.stderr.contains("depends on no-such-box, which does not exist"), "\(unknown.stderr)")
        let cycle = try MSBHarness.run(["create", "--name", a, "--replace", "--depends-on", b])
        #expect(cycle.status == 2 && cycle.stderr.hasPrefix("error: dependency cycle: \(a) → \(b) → \(a)\n"), "\(cycle.stderr)")
        #expect(try Self.inspect(a)["status"] as? String == "running")

        // --replace: the running sandbox of that name goes (stopped first), a new one comes.
        let before = try Self.inspect(b)["created_at"] as? String
        let taken = try MSBHarness.run(["create", "--name", b])
        #expect(taken.status != 0)
        try MSBHarness.ok(["create", "--name", b, "--replace", "--hostname", "b2"])
        #expect(try MSBHarness.ok(["exec", b, "--"] + Self.hostnameCommand) == "b2\n")
        let replaced = try Self.inspect(b)
        #expect(replaced["depends_on"] == nil && replaced["status"] as? String == "running")
        // The new hostname and the dropped dependency show it is a new sandbox; created_at has
        // whole-second resolution, so the replacement may share its predecessor's second.
        #expect((replaced["created_at"] as? String ?? "") >= (before ?? ""))

        // drain: the running command finishes, a new one is refused, then the sandbox stops.
        let background = DataBox()
        Thread.detachNewThread {
            let result = try? MSBHarness.run(["exec", b, "--", "sh", "-c", "touch /tmp/begun; sleep 2; echo finished"])
            background.data = Data((result.map { "\($0.status) \($0.out)" } ?? "failed").utf8)
            background.done.signal()
        }
        let begun = Date()
        while try MSBHarness.run(["exec", b, "--", "test", "-e", "/tmp/begun"]).status != 0, Date().timeIntervalSince(begun) < 30 { usleep(100_000) }
        #expect(try MSBHarness.ok(["drain", "--no-wait", b]) == "\(b)\n")
        #expect(try Self.inspect(b)["status"] as? String == "draining")
        let refused = try MSBHarness.run(["exec", b, "--", "true"])
        #expect(refused.status == 125 && refused.stderr.hasPrefix("error: sandbox \(b) is draining: it takes no new commands"), "\(refused.stderr)")
        #expect(try MSBHarness.ok(["drain", b]) == "\(b)\n")
        #expect(background.done.wait(timeout: .now() + 30) == .success)
        #expect(String(decoding: background.data, as: UTF8.self) == "0 finished\n")
        #expect(try Self.inspect(b)["status_reason"] as? String == "stopped: drained")
    }

    @Test func throughSandboxStart() throws {
        let server = try TestServer(name: "srvopt-\(getpid() % 10_000)", options: ["--dev"])
        let s = MSBHarness.uniqueName("sdks"), t = MSBHarness.uniqueName("sdkt")
        defer {
            for name in [s, t] { _ = try? server.msb(["rm", "-f", name], key: nil) }
            server.stop()
        }
        func start(_ name: String, _ config: [String: Any], replace: Bool? = nil) throws -> (status: Int, json: [String: Any]) {
            var params: [String: Any] = ["sandbox": name, "namespace": "default", "config": config]
            if let replace { params["replace"] = replace }
            return try server.rpc("sandbox.start", params, key: nil)
        }
        func run(_ name: String, _ command: String, _ args: [String]) throws -> String {
            let result = try server.rpc("sandbox.command.run", ["sandbox": name, "namespace": "default", "command": command, "args": args],
                                        key: nil).json["result"] as? [String: Any]
            return (result?["output"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }.joined(separator: "\n")
        }
        func inspect(_ name: String) throws -> [String: Any] {
            let result = try server.rpc("sandbox.inspect", ["sandbox": name, "namespace": "default"], key: nil).json["result"] as? [String: Any]
            return result?["sandbox"] as? [String: Any] ?? [:]
        }
        func errorMessage(_ answer: (status: Int, json: [String: Any])) -> String {
            (answer.json["error"] as? [String: Any])?["message"] as? String ?? ""
        }

        // hostname and idle_timeout.
        let first = try start(s, ["memory": 512, "cpus": 1, "hostname": "sdk-host", "idle_timeout": 3])
        #expect(first.json["error"] == nil, "\(first.json)")
        #expect(try run(s, "cat", ["/proc/sys/kernel/hostname"]) == "sdk-host")
        #expect(try server.msb(["wait", "--timeout", "60s", s], key: nil).status == 0)
        #expect(try inspect(s)["status_reason"] as? String == "stopped: idle for 3s")

        // A changed config is applied to the stopped sandbox before it boots again.
        let again = try start(s, ["memory": 512, "cpus": 1, "hostname": "sdk-two", "idle_timeout": 600, "envs": ["X=applied"]])
        #expect(again.json["error"] == nil, "\(again.json)")
        #expect(try run(s, "cat", ["/proc/sys/kernel/hostname"]) == "sdk-two")
        #expect(try run(s, "sh", ["-c", "echo $X"]) == "applied")
        #expect(try inspect(s)["idle_timeout_ms"] as? Int == 600_000)

        // depends_on: unknown names are refused; a stopped dependency starts first.
        let unknown = try start(t, ["depends_on": ["no-such-box"]])
        #expect((unknown.json["error"] as? [String: Any])?["code"] as? Int == -32001)
        #expect(errorMessage(unknown) == "sandbox \(t) depends on no-such-box, which does not exist")
        #expect(try server.msb(["stop", s], key: nil).status == 0)
        let dependent = try start(t, ["depends_on": [s]])
        #expect(dependent.json["error"] == nil, "\(dependent.json)")
        #expect(try inspect(s)["status"] as? String == "running")
        let cycle = try start(s, ["depends_on": [t]], replace: true)
        #expect(errorMessage(cycle) == "dependency cycle: \(s) → \(t) → \(s)")

        // replace: the running sandbox goes and a new one is made from this config.
        let replaced = try start(s, ["hostname": "sdk-three"], replace: true)
        #expect(replaced.json["result"] as? String == "Sandbox \(s) started successfully", "\(replaced.json)")
        #expect(try run(s, "cat", ["/proc/sys/kernel/hostname"]) == "sdk-three")
        #expect(try run(s, "sh", ["-c", "echo ${X:-none}"]) == "none")

        // sandbox.drain on a sandbox with nothing running: it stops at once; sandbox.wait sees it.
        let drained = try server.rpc("sandbox.drain", ["sandbox": s, "namespace": "default", "timeout": 30], key: nil)
        let status = ((drained.json["result"] as? [String: Any])?["sandbox"] as? [String: Any])?["status"] as? String
        #expect(status == "draining" || status == "stopping" || status == "stopped", "\(drained.json)")
        #expect(try server.msb(["wait", "--timeout", "60s", s], key: nil).status == 0)
        #expect(try inspect(s)["status_reason"] as? String == "stopped: drained")
        let notRunning = try server.rpc("sandbox.drain", ["sandbox": s, "namespace": "default"], key: nil)
        #expect(errorMessage(notRunning) == "failed to drain: sandbox \(s) is stopped", "\(notRunning.json)")
    }
}
