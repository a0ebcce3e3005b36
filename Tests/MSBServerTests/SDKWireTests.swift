import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// Request bodies shaped exactly as the SDKs in the wild send them, through the dispatcher
/// to sandboxes in memory (`FakeSandboxes`): what each one gets back and what reached the
/// sandbox.
@Suite struct SDKWireTests {
    let home = NSTemporaryDirectory() + "msbsdk-\(UUID().uuidString.prefix(8))"
    let authority = APIKeyAuthority(secret: Data(repeating: 3, count: 32))
    let sandboxes = FakeSandboxes(["default": ["web"], "team-a": ["api"]])

    func dispatcher(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> RPCDispatcher {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configure(&configuration)
        return RPCDispatcher(configuration: configuration, host: sandboxes.host(home: home, limits: configuration.limits),
                             authority: authority)
    }

    func key(_ namespace: String) -> String { "Bearer " + authority.issue(namespace: namespace, expiresIn: nil) }

    struct Answer {
        var status: Int
        var result: [String: Any]?
        var code: Int?
        var message: String?
        /// The `output` lines as `stream: text`.
        var lines: [String] {
            (result?["output"] as? [[String: Any]] ?? []).map { "\($0["stream"] as? String ?? "?"): \($0["text"] as? String ?? "?")" }
        }
    }

    func call(_ body: String, key: String? = nil, on d: RPCDispatcher? = nil) throws -> Answer {
        let reply = (d ?? dispatcher()).handle(body: Array(body.utf8), authorization: key ?? self.key("*"))
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
        let error = json["error"] as? [String: Any]
        return Answer(status: reply.status, result: json["result"] as? [String: Any], code: error?["code"] as? Int,
                      message: error?["message"] as? String)
    }

    /// The Python and JavaScript SDKs: `namespace` always, `timeout` in seconds.
    @Test func pythonSDKCommandRun() throws {
        let body = #"{"jsonrpc": "2.0", "method": "sandbox.command.run", "params": {"sandbox": "web", "namespace": "default", "command": "echo", "args": ["hi", "there"], "timeout": 30}, "id": "0b7f0e3c-5a7e-4a4c-9d53-1f0f5c8b2a11"}"#
        let answer = try call(body)
        #expect(answer.status == 200 && answer.code == nil, "\(answer.message ?? "")")
        #expect(answer.lines == ["stdout: hi there"])
        #expect(answer.result?["exit_code"] as? Int == 0 && answer.result?["success"] as? Bool == true)
        #expect(sandboxes.calls == ["default/web exec echo hi there timeout=30000ms"])
    }

    // MARK: timeout

    /// The Go SDK sends its HTTP client's timeout in nanoseconds
    /// (`WithHTTPClient(&http.Client{Timeout: 2*time.Minute})`): read as 120 s.
    @Test func goSDKNanosecondTimeout() throws {
        let command = #"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"args":["hi"],"command":"echo","namespace":"default","sandbox":"web","timeout":120000000000},"id":"5b0c2d1e-8f3a-4e6b-9c7d-2a1b3c4d5e6f"}"#
        let ran = try call(command)
        #expect(ran.status == 200 && ran.code == nil, "\(ran.message ?? "")")
        #expect(ran.lines == ["stdout: hi"])
        let code = #"{"jsonrpc":"2.0","method":"sandbox.repl.run","params":{"code":"print(1)","language":"python","namespace":"default","sandbox":"web","timeout":120000000000},"id":"6c1d3e2f-9a4b-4f7c-8d8e-3b2c4d5e6f70"}"#
        let evaluated = try call(code)
        #expect(evaluated.status == 200 && evaluated.result?["status"] as? String == "success", "\(evaluated.message ?? "")")
        #expect(sandboxes.calls == ["default/web exec echo hi timeout=120000ms", "default/web code python timeout=120000ms"])
    }

    /// Over the server's limit is clamped to it, in seconds or nanoseconds; a timeout under a
    /// millisecond is one millisecond, never 0 (which the guest reads as no timeout at all).
    @Test func timeoutsAreClampedNeverUnlimited() throws {
        let d = dispatcher { $0.limits.maxExecTimeoutSeconds = 600 }
        for timeout in ["99999", "7200000000000", "1e300", "600.0001", "0.0001", "1000000000", "2.5"] {
            let answer = try call(#"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"sandbox":"web","command":"true","timeout":\#(timeout)},"id":1}"#, on: d)
            #expect(answer.code == nil, "\(timeout): \(answer.message ?? "")")
        }
        #expect(sandboxes.calls.map { $0.replacingOccurrences(of: "default/web exec true ", with: "") } == [
            "timeout=600000ms", "timeout=600000ms", "timeout=600000ms", "timeout=600000ms", "timeout=1ms", "timeout=1000ms", "timeout=2500ms",
        ])
        for refused in ["0", "-1", "\"soon\"", "true"] {
            let answer = try call(#"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"sandbox":"web","command":"true","timeout":\#(refused)},"id":1}"#, on: d)
            #expect(answer.code == -32602, "\(refused)")
        }
        #expect(sandboxes.calls.count == 7)
    }

    // MARK: namespace

    /// The older Rust SDK sends no `namespace` in `command.run` and `metrics.get`: with a
    /// key for one namespace, that namespace is meant (not `default`, which was a 403).
    @Test func olderRustSDKWithoutNamespaceUsesTheKeysNamespace() throws {
        let lines = LogLines()
        let configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        let d = RPCDispatcher(configuration: configuration, host: sandboxes.host(home: home), authority: authority, log: lines.append)
        let teamA = key("team-a")
        let command = #"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"sandbox":"api","command":"echo","args":["hi"]},"id":"0f4e5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7"}"#
        let ran = try call(command, key: teamA, on: d)
        #expect(ran.status == 200 && ran.code == nil, "\(ran.message ?? "")")
        #expect(ran.lines == ["stdout: hi"])
        #expect(sandboxes.calls == ["team-a/api exec echo hi timeout=300000ms"])
        #expect(lines.all.first?.contains(" sandbox.command.run ns=team-a sandbox=api ok ") == true, "\(lines.all)")
        let metrics = #"{"jsonrpc":"2.0","method":"sandbox.metrics.get","params":{"sandbox":"api"},"id":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}"#
        let measured = try call(metrics, key: teamA, on: d)
        let entries = measured.result?["sandboxes"] as? [[String: Any]]
        #expect(entries?.count == 1, "\(measured.message ?? "")")
        #expect(entries?.first?["namespace"] as? String == "team-a" && entries?.first?["name"] as? String == "api")
        #expect(entries?.first?["running"] as? Bool == true)
        let all = try call(#"{"jsonrpc":"2.0","method":"sandbox.metrics.get","params":{},"id":"2"}"#, key: teamA, on: d)
        #expect((all.result?["sandboxes"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["api"])
    }

    /// Without a namespace, a key for all namespaces (and a development server) still means
    /// `default`, and a namespace key still cannot name another namespace.
    @Test func withoutNamespaceEverythingElseIsAsBefore() throws {
        let admin = try call(#"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"sandbox":"web","command":"true"},"id":1}"#)
        #expect(admin.code == nil, "\(admin.message ?? "")")
        let dev = RPCDispatcher(configuration: ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home])),
                                host: sandboxes.host(home: home), authority: nil)
        let devRan = try call(#"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"sandbox":"web","command":"true"},"id":1}"#, on: dev)
        #expect(devRan.code == nil, "\(devRan.message ?? "")")
        #expect(sandboxes.calls == ["default/web exec true timeout=300000ms", "default/web exec true timeout=300000ms"])
        let cross = try call(#"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"sandbox":"web","namespace":"default","command":"true"},"id":1}"#,
                             key: key("team-a"))
        #expect(cross.status == 403 && cross.code == -32004)
        #expect(sandboxes.calls.count == 2)
    }

    // MARK: metrics

    /// An unknown name is an empty list, as the reference answers, not an error; `*` too.
    @Test func metricsOfAnUnknownNameIsAnEmptyList() throws {
        for params in [#"{"namespace":"default","sandbox":"ghost"}"#, #"{"namespace":"team-a","sandbox":"web"}"#,
                       #"{"namespace":"*","sandbox":"ghost"}"#] {
            let answer = try call(#"{"jsonrpc":"2.0","method":"sandbox.metrics.get","params":\#(params),"id":"m"}"#)
            #expect(answer.status == 200 && answer.code == nil, "\(params): \(answer.message ?? "")")
            #expect(answer.result?.keys.sorted() == ["sandboxes"])
            #expect((answer.result?["sandboxes"] as? [Any])?.isEmpty == true, "\(params)")
        }
        let known = try call(#"{"jsonrpc":"2.0","method":"sandbox.metrics.get","params":{"namespace":"default","sandbox":"web"},"id":"m"}"#)
        #expect((known.result?["sandboxes"] as? [[String: Any]])?.first?["name"] as? String == "web")
        let badName = try call(#"{"jsonrpc":"2.0","method":"sandbox.metrics.get","params":{"sandbox":"../x"},"id":"m"}"#)
        #expect(badName.code == -32602)
    }
}
