import Foundation
import Testing

/// `msb server` for real: a server process on loopback, driven by URLSession with raw
/// JSON (the SDK contract and its error cases) and by the CLI's remote backend.
@Suite(.serialized) struct ServerTests {
    let server = TestServer.shared
    var admin: String { TestServer.adminKey }

    /// One python sandbox in namespace `default`, shared by the tests that only exec in it.
    static let remote: String = {
        _ = ImageTests.built
        let name = "remote-\(getpid())"
        _ = try? TestServer.shared.msb(["create", "--name", name, "--image", "python"], key: TestServer.adminKey)
        return name
    }()

    func errorMessage(_ json: [String: Any]) -> String? { (json["error"] as? [String: Any])?["message"] as? String }

    @Test func rawHTTPRequestsGetClearErrors() throws {
        let health = try server.http("GET", "/api/v1/health")
        #expect(health.status == 200)
        #expect((try JSONSerialization.jsonObject(with: health.body) as? [String: Any])?["status"] as? String == "ok")

        let garbage = try server.http("POST", "/api/v1/rpc", body: Data("{\"jsonrpc\":".utf8), key: admin)
        #expect(garbage.status == 400)
        let parse = try JSONSerialization.jsonObject(with: garbage.body) as? [String: Any] ?? [:]
        #expect(((parse["error"] as? [String: Any])?["code"] as? Int) == -32700)

        let version = try server.http("POST", "/api/v1/rpc", body: Data(#"{"jsonrpc":"1.0","method":"sandbox.list","id":7}"#.utf8), key: admin)
        #expect(version.status == 400)
        let unknown = try server.rpc("sandbox.teleport", [:])
        #expect(unknown.status == 200 && errorMessage(unknown.json) == "method not found: sandbox.teleport")
        let missing = try server.rpc("sandbox.command.run", ["sandbox": "x"])
        #expect(errorMessage(missing.json) == "invalid params: 'command' is required")

        // 9 MiB is over the 8 MiB limit: 413 with a JSON-RPC error, and the server lives on.
        let huge = try server.http("POST", "/api/v1/rpc", body: Data(repeating: 0x20, count: 9 << 20), key: admin)
        #expect(huge.status == 413)
        #expect(String(decoding: huge.body, as: UTF8.self).contains("request body too large"))
        #expect(try server.http("GET", "/api/v1/health").status == 200)

        #expect(try server.http("GET", "/api/v1/rpc").status == 405)
        #expect(try server.http("GET", "/nowhere").status == 404)
        #expect(try server.http("GET", "/api/v1/attach?sandbox=x", key: admin).status == 400)
    }

    @Test func keysAreCheckedOnEveryRequest() throws {
        let noKey = try server.rpc("sandbox.list", [:], key: nil)
        #expect(noKey.status == 401 && errorMessage(noKey.json) == "missing API key")
        let badKey = try server.rpc("sandbox.list", [:], key: "eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
        #expect(badKey.status == 401 && errorMessage(badKey.json) == "invalid API key")
        let teamA = try server.keygen(["--namespace", "team-a"])
        let cross = try server.rpc("sandbox.list", ["namespace": "team-b"], key: teamA)
        #expect(cross.status == 403)
        #expect(errorMessage(cross.json) == "this API key is for namespace 'team-a' and cannot access namespace 'team-b'")
        let expiring = try server.keygen(["--namespace", "team-a", "--expire", "1s"])
        #expect(try server.rpc("sandbox.list", ["namespace": "team-a"], key: expiring).status == 200)
        sleep(2)
        let expired = try server.rpc("sandbox.list", ["namespace": "team-a"], key: expiring)
        #expect(expired.status == 401 && errorMessage(expired.json)?.hasPrefix("API key expired at ") == true)

        // The CLI says the same, with exit code 1, for RPCs and for streamed execs alike.
        let cli = try server.msb(["--namespace", "team-b", "ls"], key: teamA)
        #expect(cli.status == 1)
        #expect(cli.stderr == "error: this API key is for namespace 'team-a' and cannot access namespace 'team-b'\n")
        let exec = try server.msb(["--namespace", "team-b", "exec", "x", "--", "true"], key: teamA)
        #expect(exec.status == 1 && exec.stderr == cli.stderr)
        let anonymous = try server.msb(["exec", "x", "--", "true"], key: nil)
        #expect(anonymous.status == 1 && anonymous.stderr.hasPrefix("error: missing API key\n"))
    }

    @Test func connectionErrorsNameTheURL() throws {
        let refused = try MSBHarness.run(["--server", "http://127.0.0.1:1", "ls"])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("error: cannot reach msb server at http://127.0.0.1:1: Connection refused\n"))
        // https is spoken (TLS against the system CAs); on loopback nothing listens on port 1.
        let https = try MSBHarness.run(["ls"], env: ["MSB_SERVER_URL": "https://127.0.0.1:1"])
        #expect(https.status == 1 && https.stderr.hasPrefix("error: cannot reach msb server at https://127.0.0.1:1: Connection refused\n"))
        let bad = try MSBHarness.run(["--server", "ftp://x", "ls"])
        #expect(bad.status == 2 && bad.stderr.hasPrefix("error: invalid server URL 'ftp://x': it must start with http:// or https://\n"))
        let localNamespace = try MSBHarness.run(["--namespace", "team-a", "ls"])
        #expect(localNamespace.status == 2 && localNamespace.stderr.hasPrefix("error: namespaces exist on an msb server only\n"))
    }

    @Test func remoteExecMatchesLocalExec() throws {
        let name = Self.remote
        #expect(try server.msb(["exec", name, "--", "python3", "-c", "print(6*7)"], key: admin).out == "42\n")
        let failing = try server.msb(["exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 7"], key: admin)
        #expect(failing.status == 7 && failing.out == "out\n" && failing.stderr == "err\n")
        let input = Data((0..<200_000).map { UInt8($0 % 251) })
        let echoed = try server.msb(["exec", name, "--", "cat"], key: admin, stdin: input)
        #expect(echoed.status == 0 && echoed.stdout == input)
        #expect(try server.msb(["exec", "--timeout", "1s", name, "--", "sleep", "30"], key: admin).status == 124)
        #expect(try server.msb(["exec", name, "--", "no-such-command"], key: admin).status == 127)
        #expect(try server.msb(["exec", "-e", "A=b", "-w", "/tmp", name, "--", "sh", "-c", "echo $A $PWD"], key: admin).out == "b /tmp\n")

        // Same words and exit code as a local msb for a sandbox that does not exist.
        let remoteMissing = try server.msb(["exec", "ghost", "--", "true"], key: admin)
        let localMissing = try MSBHarness.run(["exec", "ghost", "--", "true"])
        #expect(remoteMissing.status == localMissing.status && remoteMissing.stderr == localMissing.stderr)

        let listed = try server.msb(["ls", "--format", "json"], key: admin)
        let entries = try JSONSerialization.jsonObject(with: listed.stdout) as? [[String: Any]] ?? []
        let mine = entries.first { $0["name"] as? String == name }
        #expect(mine?["status"] as? String == "running" && mine?["namespace"] as? String == "default")
        let metrics = try server.msb(["metrics", name, "--format", "json"], key: admin)
        #expect(metrics.status == 0 && metrics.out.contains("\"memory_usage\""))
        let images = try server.msb(["image", "ls", "-q"], key: admin)
        #expect(images.out.split(separator: "\n").contains("python"))
        let insecure = try server.msb(["pull", "127.0.0.1:9/x:1", "--insecure"], key: admin)
        #expect(insecure.status == 1 && insecure.stderr.hasPrefix("error: pulling over plain HTTP is not allowed on this server\n"))
        let repl = try server.msb(["repl", name, "--no-tty"], key: admin, stdin: Data("x = 20\nprint(x + 1)\n".utf8))
        #expect(repl.status == 0 && repl.out == "21\n")
    }

    @Test func remoteTerminalSession() throws {
        let session = try ShellTests.onTerminal(["exec", "-t", Self.remote, "--", "sh"], steps: """
            [["expect","# ",30],["send","stty size\\r"],["expect","24 80",10],["send","exit 5\\r"]]
            """, env: ["MSB_SERVER_URL": server.url, "MSB_API_KEY": admin, "MSB_HOME": MSBHarness.home + "/client-home"])
        #expect(session.failed == nil, "output: \(session.output)")
        #expect(session.exit == 5)
        #expect(session.restored)
    }

    @Test func namespacesLiveApartAndLifecycleWorksRemotely() throws {
        let teamA = try server.keygen(["--namespace", "team-a"])
        let teamB = try server.keygen(["--namespace", "team-b"])
        let name = MSBHarness.uniqueName("job")
        let created = try server.msb(["--namespace", "team-a", "create", "--name", name, "--no-start"], key: teamA)
        #expect(created.status == 0 && created.out == name + "\n", "\(created.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(server.home)/namespaces/team-a/sandboxes/\(name)"))
        #expect(try server.msb(["--namespace", "team-b", "ls", "-q"], key: teamB).out.isEmpty)
        let other = try server.msb(["--namespace", "team-b", "exec", name, "--", "true"], key: teamB)
        #expect(other.status == 1 && other.stderr.hasPrefix("error: sandbox not found: \(name)\n"))

        #expect(try server.msb(["start", name], key: teamA, namespace: "team-a").status == 0)
        #expect(try server.msb(["exec", name, "--", "true"], key: teamA, namespace: "team-a").status == 0)
        #expect(try server.msb(["stop", name], key: teamA, namespace: "team-a").out == name + "\n")
        let stopped = try server.msb(["exec", name, "--", "true"], key: teamA, namespace: "team-a")
        #expect(stopped.status == 1)
        #expect(stopped.stderr == "error: failed to exec: sandbox \(name) is stopped\n  → start it with 'msb start \(name)'\n")
        #expect(try server.msb(["rm", name], key: teamA, namespace: "team-a").status == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(server.home)/namespaces/team-a/sandboxes/\(name)"))
        let gone = try server.msb(["rm", name], key: teamA, namespace: "team-a")
        #expect(gone.status == 1 && gone.stderr.hasPrefix("error: sandbox not found: \(name)\n"))
    }

    @Test func contractMethodsKeepTheirShapes() throws {
        _ = ImageTests.built
        let name = MSBHarness.uniqueName("sdk")
        let params: [String: Any] = ["sandbox": name, "namespace": "default",
                                     "config": ["image": "microsandbox/python", "memory": 512, "cpus": 1]]
        let start = try server.rpc("sandbox.start", params)
        #expect(start.json["result"] as? String == "Sandbox \(name) started successfully", "\(start.json)")
        #expect(try server.rpc("sandbox.start", params).json["result"] as? String == "Sandbox \(name) is already running")

        let command = try server.rpc("sandbox.command.run", ["sandbox": name, "command": "sh", "args": ["-c", "echo a; echo b >&2; printf c; exit 3"]])
        let result = command.json["result"] as? [String: Any] ?? [:]
        #expect(Set(result.keys) == ["command", "args", "exit_code", "success", "output"])
        #expect(result["exit_code"] as? Int == 3 && result["success"] as? Bool == false)
        let lines = result["output"] as? [[String: String]] ?? []
        #expect(lines.contains(["stream": "stdout", "text": "a"]) && lines.contains(["stream": "stderr", "text": "b"]))
        #expect(lines.contains(["stream": "stdout", "text": "c"]))

        let first = try server.rpc("sandbox.repl.run", ["sandbox": name, "language": "python", "code": "x = 41"])
        #expect((first.json["result"] as? [String: Any])?["status"] as? String == "success")
        let second = try server.rpc("sandbox.repl.run", ["sandbox": name, "language": "python", "code": "print(x + 1)"])
        let repl = second.json["result"] as? [String: Any] ?? [:]
        #expect(Set(repl.keys) == ["status", "language", "output"])
        #expect(repl["language"] as? String == "python")
        #expect(repl["output"] as? [[String: String]] == [["stream": "stdout", "text": "42"]])
        let raised = try server.rpc("sandbox.repl.run", ["sandbox": name, "language": "python", "code": "1/0"])
        #expect((raised.json["result"] as? [String: Any])?["status"] as? String == "exception")

        let metrics = try server.rpc("sandbox.metrics.get", ["namespace": "default", "sandbox": name])
        let entry = ((metrics.json["result"] as? [String: Any])?["sandboxes"] as? [[String: Any]])?.first ?? [:]
        #expect(Set(entry.keys) == ["namespace", "name", "running", "cpu_usage", "memory_usage", "disk_usage"])
        #expect(entry["running"] as? Bool == true && (entry["memory_usage"] as? Int ?? 0) > 0)

        #expect(try server.rpc("sandbox.stop", ["sandbox": name]).json["result"] as? String == "Sandbox \(name) stopped successfully")
        let unknown = try server.rpc("sandbox.stop", ["sandbox": "never-made"])
        #expect(errorMessage(unknown.json) == "sandbox not found: never-made")
        _ = try server.rpc("sandbox.remove", ["sandbox": name])
    }

    /// The published microsandbox Python SDK (installed from PyPI by scripts/test.sh), unmodified.
    @Test func publishedPythonSDKWorksUnmodified() throws {
        _ = ImageTests.built
        let python = MSBHarness.repoRoot + "/.build/sdk-venv/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "scripts/test.sh installs the SDK into .build/sdk-venv")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        let name = MSBHarness.uniqueName("sdkpy")
        process.arguments = [MSBHarness.repoRoot + "/Tests/IntegrationTests/Fixtures/sdk_client.py", name]
        process.environment = ["PATH": "/usr/bin:/bin", "MSB_SERVER_URL": server.url, "MSB_API_KEY": admin, "HOME": MSBHarness.home]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        defer { _ = try? server.rpc("sandbox.remove", ["sandbox": name, "force": true]) }
        #expect(process.terminationStatus == 0)
        let report = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        #expect(report["first"] as? String == "hi")
        #expect(report["second"] as? String == "42")
        #expect(report["exception_has_error"] as? Bool == true)
        #expect(report["command_output"] as? String == "a")
        #expect(report["command_error"] as? String == "b")
        #expect(report["command_exit_code"] as? Int == 4)
        #expect(report["running"] as? Bool == true)
        #expect((report["memory"] as? Int ?? 0) > 0)
        // The SDK stops its sandbox when the context exits.
        let after = try server.rpc("sandbox.inspect", ["sandbox": name])
        #expect(((after.json["result"] as? [String: Any])?["sandbox"] as? [String: Any])?["status"] as? String == "stopped")
    }

    @Test func limitsDevModeAndGracefulShutdown() throws {
        let dev = try TestServer(name: "srv-dev", options: ["--dev", "--max-sandboxes", "1", "--allow-insecure-registries"], sharedImages: false)
        var stopped = false
        defer { if !stopped { dev.stop() } }
        let status = try MSBHarness.run(["server", "status"], env: ["MSB_HOME": dev.home])
        #expect(status.status == 0 && status.out.contains("dev mode, no API keys") && status.out.contains("healthy"))

        // Pull from a plain-HTTP registry (allowed on this server) and run the image's command.
        let registry = try #require(RegistryTests.registry)
        let reference = "\(registry.address)/test/fixture:1"
        let pulled = try dev.msb(["pull", reference, "--insecure"], key: nil)
        #expect(pulled.status == 0 && pulled.out == reference + "\n", "\(pulled.stderr)")
        #expect(try dev.msb(["image", "ls", "-q"], key: nil).out.split(separator: "\n").contains(Substring(reference)))
        let ran = try dev.msb(["run", "--image", reference], key: nil)
        #expect(ran.status == 0 && ran.out == "from-cmd\n", "\(ran.stderr)")
        #expect(try dev.msb(["ls", "-q"], key: nil).out.isEmpty)  // run removed its sandbox
        #expect(try dev.msb(["create", "--name", "one"], key: nil).status == 0)
        let second = try dev.msb(["create", "--name", "two"], key: nil)
        #expect(second.status == 1)
        #expect(second.stderr == "error: server limit reached: at most 1 sandboxes may run at once\n  → stop a sandbox first\n")
        let log = String(decoding: FileManager.default.contents(atPath: dev.home + "/test-server.log") ?? Data(), as: UTF8.self)
        #expect(log.contains("WARNING: --dev mode: API keys are NOT checked"))

        // A graceful stop lets a request in flight finish, then stops the sandboxes it ran.
        let inFlight = ResponseBox()
        let answered = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let result = try? dev.rpc("sandbox.command.run", ["sandbox": "one", "command": "sh",
                                                              "args": ["-c", "touch /tmp/started; sleep 2; echo done"]], key: nil)
            inFlight.status = result?.status ?? -1
            inFlight.data = (try? JSONSerialization.data(withJSONObject: result?.json ?? [:])) ?? Data()
            answered.signal()
        }
        // Stop only once the command runs in the guest.
        for _ in 0..<100 {
            let probe = try dev.rpc("sandbox.command.run", ["sandbox": "one", "command": "test", "args": ["-e", "/tmp/started"]], key: nil)
            if (probe.json["result"] as? [String: Any])?["exit_code"] as? Int == 0 { break }
            usleep(50_000)
        }
        let stop = try MSBHarness.run(["server", "stop"], env: ["MSB_HOME": dev.home])
        stopped = true
        #expect(stop.status == 0)
        answered.wait()
        let finished = (try JSONSerialization.jsonObject(with: inFlight.data) as? [String: Any])?["result"] as? [String: Any]
        #expect(inFlight.status == 200 && finished?["exit_code"] as? Int == 0, "\(String(decoding: inFlight.data, as: UTF8.self))")
        #expect(finished?["output"] as? [[String: String]] == [["stream": "stdout", "text": "done"]])
        let left = try MSBHarness.run(["ls", "--format", "json"], env: ["MSB_HOME": dev.home + "/namespaces/default"])
        let entries = try JSONSerialization.jsonObject(with: left.stdout) as? [[String: Any]] ?? []
        #expect(entries.first { $0["name"] as? String == "one" }?["status"] as? String == "stopped")
        let after = try MSBHarness.run(["server", "status"], env: ["MSB_HOME": dev.home])
        #expect(after.status == 3 && after.out == "not running\n")
    }
}
