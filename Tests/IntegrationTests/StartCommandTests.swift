import Foundation
import Testing

/// The SDKs' `exec`, `scripts` and `shell` on real microVMs, through the CLI
/// (`--start-command`, `--script`, `--shell`, `msb logs`, `msb exec --script`, `msb shell`)
/// and through `sandbox.start` (`sandbox.logs`, a changed config applied at the next
/// start). One sandbox each: every option is checked on the same boot.
@Suite(.serialized) struct StartCommandTests {
    /// Polls `read` until it contains `needle` (the start command runs in the background).
    static func eventually(_ needle: String, timeoutSeconds: Double = 30, _ read: () throws -> String) rethrows -> String {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var text = try read()
        while !text.contains(needle) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.3)
            text = try read()
        }
        return text
    }

    @Test func throughTheCLI() throws {
        let a = MSBHarness.uniqueName("cmda")
        defer { _ = try? MSBHarness.run(["rm", "-f", a]) }
        try MSBHarness.ok(["create", "--name", a, "--start-command", "echo out-$((1+1)); echo err >&2; sleep 1; exit 7",
                           "--script", "s=echo \"script:$1:$#\"; exit 5", "--shell", "/bin/ash"])

        // The start command's output and its exit status, in the sandbox's log.
        let log = try Self.eventually("[msb] exec exited with status 7") { try MSBHarness.run(["logs", a]).out }
        #expect(log.hasPrefix("[msb] exec started at "), "\(log)")
        #expect(log.contains("out-2\n") && log.contains("err\n") && log.hasSuffix("[msb] exec exited with status 7\n"), "\(log)")
        #expect(try MSBHarness.ok(["logs", "-n", "1", a]) == "[msb] exec exited with status 7\n")
        let sandboxDirectory = MSBHarness.home + "/sandboxes/" + a
        let mode = try FileManager.default.attributesOfItem(atPath: sandboxDirectory + "/exec.log")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // A script by name, with its arguments as "$@"; and as a file in the guest.
        let script = try MSBHarness.run(["exec", a, "--script", "s", "--", "x", "y z"])
        #expect(script.status == 5 && script.out == "script:x:2\n", "\(script.stderr)")
        let file = try MSBHarness.run(["exec", a, "--", "/.msb/scripts/s", "q"])
        #expect(file.status == 5 && file.out == "script:q:1\n", "\(file.stderr)")
        #expect(try MSBHarness.ok(["exec", a, "--", "stat", "-c", "%a", "/.msb/scripts/s"]) == "755\n")
        let unknown = try MSBHarness.run(["exec", a, "--script", "nope"])
        #expect(unknown.status == 1 && unknown.stderr == "error: sandbox \(a) has no script 'nope'\n  → its scripts: s\n")
        let hostile = try MSBHarness.run(["create", "--name", MSBHarness.uniqueName("cmdx"), "--script", "../../etc/x=id"])
        #expect(hostile.status == 2 && hostile.stderr.hasPrefix("error: invalid script name '../../etc/x'"))

        // msb shell opens the configured shell.
        #expect(try MSBHarness.ok(["shell", a], stdin: Data("echo $0\n".utf8)) == "/bin/ash\n")

        let inspected = try JSONSerialization.jsonObject(with: MSBHarness.run(["inspect", a]).stdout) as? [String: Any] ?? [:]
        #expect(inspected["shell"] as? String == "/bin/ash" && inspected["scripts"] as? [String: String] == ["s": "echo \"script:$1:$#\"; exit 5"])
        #expect(inspected["exec"] as? String == "echo out-$((1+1)); echo err >&2; sleep 1; exit 7")

        // Each start runs it again and appends to the log.
        try MSBHarness.ok(["stop", a])
        try MSBHarness.ok(["start", a])
        let twice = try Self.eventually("status 7\n[msb] exec started") { try MSBHarness.run(["logs", a]).out }
        #expect(twice.components(separatedBy: "[msb] exec started at ").count == 3, "\(twice)")
        // The second run ends like the first: two exit lines, the last one last.
        let exits = try Self.eventually("2") {
            String(try MSBHarness.run(["logs", a]).out.components(separatedBy: "[msb] exec exited with status 7\n").count - 1)
        }
        #expect(exits == "2")
        #expect(try MSBHarness.ok(["logs", "-n", "1", a]) == "[msb] exec exited with status 7\n")
    }

    @Test func throughSandboxStart() throws {
        let server = try TestServer(name: "srvcmd-\(getpid() % 10_000)", options: ["--dev"])
        let s = MSBHarness.uniqueName("sdkc")
        defer {
            _ = try? server.msb(["rm", "-f", s], key: nil)
            server.stop()
        }
        func start(_ name: String, _ config: [String: Any]) throws -> [String: Any] {
            try server.rpc("sandbox.start", ["sandbox": name, "namespace": "default", "config": config], key: nil).json
        }
        func run(_ command: String, _ args: [String]) throws -> String {
            let result = try server.rpc("sandbox.command.run", ["sandbox": s, "namespace": "default", "command": command, "args": args],
                                        key: nil).json["result"] as? [String: Any]
            return (result?["output"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }.joined(separator: "\n")
        }
        func logs() throws -> String {
            let result = try server.rpc("sandbox.logs", ["sandbox": s, "namespace": "default"], key: nil).json["result"] as? [String: Any]
            return String(decoding: Data(base64Encoded: result?["content"] as? String ?? "") ?? Data(), as: UTF8.self)
        }

        let first = try start(s, ["exec": "echo sdk-started; exit 3", "scripts": ["hi": "echo hi-$1"], "shell": "/bin/ash"])
        #expect(first["error"] == nil, "\(first)")
        #expect(try run("/.msb/scripts/hi", ["x"]) == "hi-x")
        let log = try Self.eventually("[msb] exec exited with status 3") { try logs() }
        #expect(log.contains("sdk-started\n[msb] exec exited with status 3\n"), "\(log)")
        // The CLI against the server: exec --script, logs, shell.
        #expect(try server.msb(["exec", s, "--script", "hi", "--", "y"], key: nil).out == "hi-y\n")
        #expect(try server.msb(["logs", "-n", "1", s], key: nil).out == "[msb] exec exited with status 3\n")
        #expect(try server.msb(["shell", s], key: nil, stdin: Data("echo $0\n".utf8)).out == "/bin/ash\n")

        // Hostile script names are refused before anything is made.
        let hostile = try start(MSBHarness.uniqueName("sdkx"), ["scripts": ["../../etc/profile.d/x": "id"]])
        #expect((hostile["error"] as? [String: Any])?["code"] as? Int == -32602, "\(hostile)")

        // A changed config at the next start: the old script is gone, the new one is there.
        #expect(try server.msb(["stop", s], key: nil).status == 0)
        let second = try start(s, ["exec": "echo second-start", "scripts": ["bye": "echo bye"]])
        #expect(second["error"] == nil, "\(second)")
        #expect(try run("sh", ["-c", "ls /.msb/scripts"]) == "bye")
        #expect(try Self.eventually("second-start") { try logs() }.contains("second-start"))
    }
}
