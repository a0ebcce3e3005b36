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
}
