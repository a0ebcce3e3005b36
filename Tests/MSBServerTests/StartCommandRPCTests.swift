import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// The SDKs' `shell`, `scripts` and `exec` in `sandbox.start` / `sandbox.create`, and
/// `sandbox.logs`: what reaches the config, what is refused before anything is touched,
/// what a start of a stopped sandbox applies. Booting them is IntegrationTests/StartCommandTests.
@Suite struct StartCommandRPCTests {
    @Test func theyReachTheConfig() throws {
        let tests = StartOptionRPCTests()
        let config = try tests.config(#"{"shell":"/bin/bash","scripts":{"build":"make","test":"make test"},"exec":"python -m http.server"}"#)
        #expect(config.shell == "/bin/bash" && config.startCommand == "python -m http.server")
        #expect(config.scripts == ["build": "make", "test": "make test"])
        let none = try tests.config(#"{"shell":"","scripts":{},"exec":""}"#)
        #expect(none.shell == nil && none.scripts == nil && none.startCommand == nil)
    }

    @Test func hostileNamesAndValuesAreInvalidParams() throws {
        let tests = StartOptionRPCTests()
        let d = tests.dispatcher()
        for (config, message) in [
            (#"{"scripts":{"../../etc/cron.d/x":"id"}}"#, "invalid script name '../../etc/cron.d/x'"),
            (#"{"scripts":{"a/b":"id"}}"#, "invalid script name 'a/b'"),
            (#"{"scripts":{"..":"id"}}"#, "invalid script name '..'"),
            (#"{"scripts":{"ok":""}}"#, "invalid command of script ok: it must be 1 to 65536 bytes without NUL"),
            (#"{"shell":"sh"}"#, "invalid shell 'sh'"),
            (#"{"exec":"a\u0000b"}"#, "invalid 'exec': it must be 1 to 65536 bytes without NUL"),
        ] {
            let refused = try tests.call("sandbox.start", #"{"sandbox":"v","config":\#(config)}"#, on: d)
            #expect(refused.code == -32602, "\(config)")
            #expect(refused.message == message)
        }
        let notAMap = try tests.call("sandbox.create", #"{"sandbox":"v","config":{"scripts":["a"]}}"#, on: d)
        #expect(notAMap.code == -32602)
    }

    @Test func aStartOfAStoppedSandboxAppliesAndClearsThem() throws {
        let changes = StartChangesRPCTests()
        let (d, backend, info) = try changes.stopped()
        let set = try changes.apply(#"{"shell":"/bin/ash","scripts":{"s":"echo hi"},"exec":"sleep 100"}"#, d, backend, info)
        #expect(set.shell == "/bin/ash" && set.scripts == ["s": "echo hi"] && set.startCommand == "sleep 100")
        let kept = try changes.apply(#"{"memory":1024}"#, d, backend, try backend.inspect("web"))
        #expect(kept.shell == "/bin/ash" && kept.scripts == ["s": "echo hi"] && kept.startCommand == "sleep 100")
        let cleared = try changes.apply(#"{"shell":"","scripts":{},"exec":""}"#, d, backend, try backend.inspect("web"))
        #expect(cleared.shell == nil && cleared.scripts == nil && cleared.startCommand == nil)
    }

    @Test func inspectShowsThemUnderTheSDKsNames() throws {
        var config = SandboxConfig(name: "web")
        config.shell = "/bin/bash"
        config.scripts = ["t": "make test"]
        config.startCommand = "serve"
        let wire = RemoteWire.Sandbox(SandboxInfo(config: config, status: .running, createdAt: Date(timeIntervalSince1970: 0)))
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(wire)) as? [String: Any] ?? [:]
        #expect(json["shell"] as? String == "/bin/bash" && json["exec"] as? String == "serve")
        #expect(json["scripts"] as? [String: String] == ["t": "make test"])
        let back = try JSONDecoder().decode(RemoteWire.Sandbox.self, from: JSONEncoder().encode(wire)).info.config
        #expect(back.shell == "/bin/bash" && back.scripts == ["t": "make test"] && back.startCommand == "serve")
        // And a remote create sends them.
        let params = RPC.SandboxConfigParams(config)
        #expect(params.shell == "/bin/bash" && params.scripts == ["t": "make test"] && params.exec == "serve")
    }
}

@Suite struct LogsRPCTests {
    @Test func logsAreBase64AndBoundedByMaxBytes() throws {
        let files = FilesRPCTests()
        let whole = try files.call("sandbox.logs", [:])
        let content = try #require(whole.result?["content"] as? String)
        #expect(String(decoding: Data(base64Encoded: content) ?? Data(), as: UTF8.self)
                == "[msb] exec started\nhello\n[msb] exec exited with status 0\n")
        #expect(whole.result?["truncated"] as? Bool == false)
        let tail = try files.call("sandbox.logs", ["max_bytes": 31])
        #expect(Data(base64Encoded: tail.result?["content"] as? String ?? "") == Data("[msb] exec exited with status 0\n".utf8.suffix(31)))
        #expect(tail.result?["truncated"] as? Bool == true)
        // More than one answer carries is cut to the limit before the backend is asked.
        _ = try files.call("sandbox.logs", ["max_bytes": 1 << 40])
        #expect(files.sandboxes.calls.last == "default/web logs \(RPC.Logs.maxBytes)")
        #expect(try files.call("sandbox.logs", ["max_bytes": -1]).code == -32602)
        #expect(try files.call("sandbox.logs", ["sandbox": "../x"]).code == -32602)
        #expect(try files.call("sandbox.logs", ["sandbox": "gone"]).code == -32001)
    }
}
