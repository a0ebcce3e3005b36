import Foundation
import MSBCore
import MSBServer

extension FuzzTargets {
    /// A server that can never act: its home is under /dev/null (nothing can be created or
    /// read there) and its one key is for a namespace that fails validation, so every method
    /// stops at the namespace check or the admin check after its params are decoded. No
    /// sandbox, image pull (network) or file can result from any input.
    private static let dispatcher: RPCDispatcher = {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": "/dev/null/msb-fuzz"]))
        configuration.version = "fuzz"
        return RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                             authority: authority)
    }()
    private static let authority = APIKeyAuthority(secret: Data(repeating: 7, count: 32))
    private static let validKey = "Bearer " + authority.issue(namespace: "NOT A NAMESPACE", expiresIn: nil)

    /// `POST /api/v1/rpc` bodies from any client. Input: `AUTHORIZATION NUL BODY` to fuzz the
    /// key check too, or just `BODY`, sent with a valid key so that the envelope and params
    /// decoding are reached. Every reply is JSON with a status the contract allows.
    static func fuzzJSONRPC(_ bytes: [UInt8]) {
        let authorization: String?
        let body: [UInt8]
        if let nul = bytes.firstIndex(of: 0) {
            authorization = String(decoding: bytes[..<nul], as: UTF8.self)
            body = Array(bytes[(nul + 1)...])
        } else {
            authorization = validKey
            body = bytes
        }
        let reply = dispatcher.handle(body: body, authorization: authorization)
        guard (200...599).contains(reply.status) else {
            violated("HTTP status \(reply.status) for \(String(decoding: body, as: UTF8.self))")
        }
        if reply.status != 204, (try? JSONSerialization.jsonObject(with: Data(reply.body), options: [.fragmentsAllowed])) == nil {
            violated("a reply that is not JSON: \(String(decoding: reply.body, as: UTF8.self))")
        }
    }
}
