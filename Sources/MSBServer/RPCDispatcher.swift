import Foundation
import MSBClient
import MSBCore

/// An HTTP answer: status and JSON body (empty for 204).
package struct RPCReply: Sendable, Equatable {
    package var status: Int
    package var body: [UInt8]
}

/// JSON-RPC 2.0 over `POST /api/v1/rpc`, independent of the HTTP layer so that tests can
/// drive it directly: envelope checks, authentication, dispatch to the methods, and the
/// mapping of every failure to an error object and an HTTP status.
package final class RPCDispatcher: Sendable {
    package let configuration: ServerConfiguration
    package let host: SandboxHost
    /// nil in dev mode: nothing is checked.
    package let authority: APIKeyAuthority?
    /// The issued keys (revocation); nil: a valid signature is enough (unit tests).
    package let keys: APIKeyRegistry?
    /// Takes the server's host directories out of everything sent to a client.
    package let redact: HostPathRedactor
    /// Receives one access-log line per call (the server's stderr).
    let log: @Sendable (String) -> Void

    package init(configuration: ServerConfiguration, host: SandboxHost, authority: APIKeyAuthority?,
                 keys: APIKeyRegistry? = nil, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.configuration = configuration
        self.host = host
        self.authority = authority
        self.keys = keys
        self.redact = HostPathRedactor(paths: configuration.paths)
        self.log = log
    }

    /// `2026-11-25T15:30:00Z sandbox.start ns=default sandbox=web ok 1834ms`; whatever came
    /// from the client is escaped (`sandbox="a\nb"`), so a name cannot forge a line.
    func logCall(_ what: String, _ params: RPCParams, claims: APIKeyClaims, started: Date, error: MSBError?) {
        let namespace = LogText.field((params.raw["namespace"] as? String) ?? claims.defaultNamespace)
        let sandbox = params.raw["sandbox"].map { " sandbox=\(LogText.field(($0 as? String) ?? "\($0)"))" } ?? ""
        let outcome = error.map { "error \($0.code): \(LogText.quoted($0.description))" } ?? "ok"
        log("\(RemoteWire.iso8601(Date())) \(LogText.field(what)) ns=\(namespace)\(sandbox) \(outcome) \(Int(clamping: UInt64(exactly: (Date().timeIntervalSince(started) * 1000).rounded()) ?? 0))ms")
    }

    /// An error as a client receives it: JSON-RPC envelope, host paths taken out.
    func errorBody(id: RPCID, _ error: MSBError, rpcCode: Int? = nil) -> [UInt8] {
        RemoteWire.encoded(RemoteWire.errorResponse(id: id, redact.error(error), rpcCode: rpcCode))
    }

    /// The HTTP answer to a refused attach (or any plain HTTP refusal).
    func refusal(_ error: MSBError, status explicit: Int? = nil) -> RPCReply {
        RPCReply(status: explicit ?? error.code.edges.httpStatus, body: errorBody(id: .null, error) + [10])
    }

    /// Who is calling, from the `Authorization` header.
    package func authenticate(_ authorization: String?) throws(MSBError) -> APIKeyClaims {
        guard let authority else { return APIKeyClaims(namespace: "*", issuedAt: Date(), expiresAt: nil) }
        guard let authorization, !authorization.isEmpty else {
            throw MSBError(.accessDenied, "missing API key", hint: "send 'Authorization: Bearer KEY' (the CLI and SDKs read MSB_API_KEY)")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw MSBError(.accessDenied, "the Authorization header must be 'Bearer KEY'")
        }
        let claims = try authority.verify(String(parts[1]).trimmingCharacters(in: .whitespaces))
        try keys?.check(claims)
        return claims
    }

    package func handle(body: [UInt8], authorization: String?) -> RPCReply {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
        } catch {
            return reply(400, Self.envelopeError(id: .null, RemoteWire.ErrorCode.parse, "parse error: the body is not valid JSON"))
        }
        let claims: APIKeyClaims
        do {
            claims = try authenticate(authorization)
        } catch {
            let id = RPCID(json: (parsed as? [String: Any])?["id"]) ?? .null
            return reply(401, errorBody(id: id, error))
        }
        if let batch = parsed as? [Any] {
            guard !batch.isEmpty else { return reply(400, invalidRequest("an empty batch")) }
            let answers = batch.compactMap { handleOne($0, claims: claims).response }
            guard !answers.isEmpty else { return RPCReply(status: 204, body: []) }
            return reply(200, [UInt8]("[".utf8) + Array(answers.joined(separator: [UInt8](",".utf8))) + [UInt8]("]".utf8))
        }
        let (status, response) = handleOne(parsed, claims: claims)
        guard let response else { return RPCReply(status: 204, body: []) }
        return reply(status, response)
    }

    /// One request: its HTTP status and encoded response (nil for a notification).
    private func handleOne(_ request: Any, claims: APIKeyClaims) -> (status: Int, response: [UInt8]?) {
        guard let object = request as? [String: Any] else { return (400, invalidRequest("the request must be a JSON object")) }
        let isNotification = object["id"] == nil
        guard let id = RPCID(json: object["id"]) else {
            return (400, invalidRequest("'id' must be a string, a number or null"))
        }
        guard object["jsonrpc"] as? String == "2.0" else { return (400, invalidRequest("'jsonrpc' must be \"2.0\"", id: id)) }
        guard let method = object["method"] as? String else { return (400, invalidRequest("'method' must be a string", id: id)) }
        let params: RPCParams
        switch object["params"] {
        case nil, is NSNull: params = RPCParams(raw: [:])
        case let named as [String: Any]: params = RPCParams(raw: named)
        default:
            return (200, Self.envelopeError(id: id, RemoteWire.ErrorCode.invalidParams,
                                            "invalid params: 'params' must be an object of named parameters"))
        }
        guard let handler = Self.methods[method] else {
            let response = Self.envelopeError(id: id, RemoteWire.ErrorCode.methodNotFound, "method not found: \(method)",
                                              hint: "methods: " + Self.methods.keys.sorted().joined(separator: ", "))
            return (200, isNotification ? nil : response)
        }
        let started = Date()
        // Counted against the namespace the call names (once the key may use it), so one
        // namespace holds at most its share of the workers.
        let namespace = (params.raw["namespace"] as? String) ?? claims.defaultNamespace
        let call = RPCCall(claims: claims, params: params)
        do {
            let answer = try claims.allows(namespace)
                ? host.calls.withSlot(namespace) { () throws(MSBError) in try handler(self, call, id) }
                : handler(self, call, id)
            logCall(method, params, claims: claims, started: started, error: nil)
            return (200, isNotification ? nil : answer)
        } catch {
            logCall(method, params, claims: claims, started: started, error: error)
            // A key used outside its namespace is refused with 403, too many calls with 429,
            // as HTTP clients expect.
            return (error.code.edges.rpcHTTPStatus, isNotification ? nil : errorBody(id: id, error))
        }
    }

    private func invalidRequest(_ why: String, id: RPCID = .null) -> [UInt8] {
        Self.envelopeError(id: id, RemoteWire.ErrorCode.invalidRequest, "invalid request: \(why)")
    }

    /// An error of the envelope itself (parse, invalid request, params, unknown method).
    static func envelopeError(id: RPCID, _ code: Int, _ message: String, hint: String? = nil) -> [UInt8] {
        let kind: MSBError.Code = code == RemoteWire.ErrorCode.methodNotFound ? .notFound : .invalidArgument
        return RemoteWire.encoded(RemoteWire.errorResponse(id: id, MSBError(kind, message, hint: hint), rpcCode: code))
    }

    package func reply(_ status: Int, _ body: [UInt8]) -> RPCReply {
        RPCReply(status: status, body: body + [10])
    }
}

/// What a method sees of its request.
struct RPCCall {
    let claims: APIKeyClaims
    let params: RPCParams

    /// The request's namespace, which the key must cover; when absent, the key's own
    /// (`claims.defaultNamespace`).
    func namespace(_ requested: String?) throws(MSBError) -> String {
        let namespace = requested ?? claims.defaultNamespace
        try InputParsing.validateNamespace(namespace)
        try authorize(namespace)
        return namespace
    }

    func authorize(_ namespace: String) throws(MSBError) {
        guard claims.allows(namespace) else {
            throw MSBError(.accessDenied, "this API key is for namespace '\(claims.namespace)' and cannot access namespace '\(namespace)'")
        }
    }

    /// A key for all namespaces (or a development server without keys).
    var isAdmin: Bool { claims.namespace == "*" }

    /// Server-wide operations (images shared by every namespace) need a key for all namespaces.
    func requireAdmin(_ what: String) throws(MSBError) {
        guard claims.namespace == "*" else {
            throw MSBError(.accessDenied, "\(what) needs an API key for all namespaces",
                           hint: "issue one with 'msb server keygen' (without --namespace)")
        }
    }
}
