import Foundation
import MSBHTTP
import NIOHTTP1
import MSBCore
import MSBOS
import MSBProtocol

/// Sandboxes on an `msb server`: lifecycle, listing, metrics and images are JSON-RPC calls;
/// exec and the code REPL upgrade a connection to the framed host protocol and reuse the
/// very clients a local exec uses, so stdin streaming, signals, terminals, timeouts and
/// exit codes behave the same both ways.
package final class RemoteBackend: SupervisorStreamBackend {
    package let endpoint: RemoteEndpoint
    /// Largest answer accepted (a `sandbox.list` of thousands of sandboxes is well under it).
    static let maxResponseBytes = 256 << 20
    /// A call may run a command for up to the server's limit of an hour.
    static let callTimeoutSeconds = 3700.0

    package init(endpoint: RemoteEndpoint) {
        self.endpoint = endpoint
    }

    /// One HTTP exchange with the server; transport failures say which server and why.
    package static func request(_ endpoint: RemoteEndpoint, _ method: HTTPMethod, path: String, body: [UInt8]? = nil,
                                timeoutSeconds: Double = callTimeoutSeconds) throws(MSBError) -> HTTPTransport.Response {
        var headers = endpoint.headers
        if body != nil { headers.append(("Content-Type", "application/json")) }
        do {
            return try HTTPTransport.send(method, endpoint.origin + path, headers: headers, body: body,
                                          timeoutSeconds: timeoutSeconds, maxBodyBytes: maxResponseBytes)
        } catch {
            throw MSBError(.agentFailure, "cannot reach msb server at \(endpoint.url): \(error.reason)",
                           hint: "check that 'msb server start' runs there, and --server / MSB_SERVER_URL")
        }
    }

    // MARK: JSON-RPC

    /// Calls `method` in the endpoint's namespace and returns its `result`.
    @discardableResult
    package func call(_ method: String, _ params: [String: Any] = [:]) throws(MSBError) -> Any {
        var params = params
        params["namespace"] = params["namespace"] ?? endpoint.namespace
        let request: [String: Any] = ["jsonrpc": "2.0", "method": method, "params": params, "id": UUID().uuidString]
        let body: Data
        do { body = try JSONSerialization.data(withJSONObject: request) } catch {
            throw MSBError(.internalError, "cannot encode the request for \(method)")
        }
        let response = try Self.request(endpoint, .POST, path: RemoteWire.rpcPath, body: Array(body))
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            let text = String(decoding: response.body.prefix(200), as: UTF8.self)
            throw MSBError(.agentFailure, "msb server at \(endpoint.url) answered HTTP \(response.status) without JSON: \(text)",
                           hint: "is \(endpoint.url) an msb server?")
        }
        if let error = object["error"] as? [String: Any] { throw RemoteWire.error(from: error) }
        guard response.status == 200, let result = object["result"] else {
            throw MSBError(.agentFailure, "msb server at \(endpoint.url) answered HTTP \(response.status) without a result")
        }
        return result
    }

    private func sandbox(from result: Any) throws(MSBError) -> SandboxInfo {
        guard let object = (result as? [String: Any])?["sandbox"] else {
            throw MSBError(.internalError, "the server's answer has no sandbox")
        }
        return try RemoteWire.decode(RemoteWire.Sandbox.self, from: object).info
    }

    // MARK: Lifecycle

    package func create(_ config: SandboxConfig, start: Bool) throws(MSBError) -> SandboxInfo {
        var wire: [String: Any] = ["image": config.image, "memory": config.memoryMiB, "cpus": config.cpus,
                                   "envs": config.environment, "workdir": config.workingDirectory,
                                   "accelerator": config.accelerator.rawValue]
        if let user = config.user { wire["user"] = user }
        if let max = config.maxDurationMilliseconds { wire["max_duration_ms"] = max }
        return try sandbox(from: call("sandbox.create", ["sandbox": config.name, "config": wire, "start": start]))
    }

    package func start(_ name: String) throws(MSBError) -> SandboxInfo {
        try call("sandbox.start", ["sandbox": name, "create": false])
        return try inspect(name)
    }

    package func stop(_ name: String, force: Bool) throws(MSBError) -> SandboxInfo {
        try call("sandbox.stop", ["sandbox": name, "force": force])
        return try inspect(name)
    }

    package func remove(_ name: String, force: Bool) throws(MSBError) {
        try call("sandbox.remove", ["sandbox": name, "force": force])
    }

    package func list() throws(MSBError) -> [SandboxInfo] {
        let result = try call("sandbox.list")
        guard let items = (result as? [String: Any])?["sandboxes"] else { throw MSBError(.internalError, "the server's answer has no sandboxes") }
        return try RemoteWire.decode([RemoteWire.Sandbox].self, from: items).map(\.info)
    }

    package func inspect(_ name: String) throws(MSBError) -> SandboxInfo {
        try sandbox(from: call("sandbox.inspect", ["sandbox": name]))
    }

    // MARK: Streams

    /// A connection to the sandbox's supervisor through the server, or the reason there is none.
    package func openSupervisorStream(_ name: String, purpose: SupervisorStreamPurpose) throws(MSBError) -> Int32 {
        try InputParsing.validateName(name)
        let path = "\(RemoteWire.attachPath)?namespace=\(endpoint.namespace)&sandbox=\(name)&purpose=\(purpose.rawValue)"
        do {
            return try UpgradedStream.open(host: endpoint.host, port: Int(endpoint.port), tls: endpoint.tls, path: path,
                                           protocolName: RemoteWire.attachProtocol, headers: endpoint.headers)
        } catch {
            switch error {
            case .unreachable(let reason):
                throw MSBError(.agentFailure, "cannot reach msb server at \(endpoint.url): \(reason)",
                               hint: "check that 'msb server start' runs there, and --server / MSB_SERVER_URL")
            case .refused(let status, let body):
                if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                   let error = object["error"] as? [String: Any] {
                    throw RemoteWire.error(from: error)
                }
                throw MSBError(.agentFailure, "msb server at \(endpoint.url) refused the connection to \(name) (HTTP \(status))")
            }
        }
    }

    package func metrics(_ name: String) throws(MSBError) -> SandboxMetrics {
        let result = try call("sandbox.metrics.get", ["sandbox": name, "detail": true])
        guard let first = ((result as? [String: Any])?["sandboxes"] as? [Any])?.first else {
            throw MSBError.sandboxNotFound(name)
        }
        return try RemoteWire.decode(RemoteWire.Metrics.self, from: first).metrics
    }

    // MARK: Images

    package func listImages() throws(MSBError) -> [ImageInfo] {
        let result = try call("image.list")
        guard let items = (result as? [String: Any])?["images"] else { throw MSBError(.internalError, "the server's answer has no images") }
        return try RemoteWire.decode([ImageInfo].self, from: items)
    }

    private func image(from result: Any) throws(MSBError) -> ImageInfo {
        guard let object = (result as? [String: Any])?["image"] else { throw MSBError(.internalError, "the server's answer has no image") }
        return try RemoteWire.decode(ImageInfo.self, from: object)
    }

    package func pullImage(_ reference: String, insecure: Bool, credentials: String?,
                           progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        var params: [String: Any] = ["reference": reference, "insecure": insecure]
        if let credentials { params["credentials"] = credentials }
        progress("pulling \(reference) on \(endpoint.url)")
        return try image(from: call("image.pull", params))
    }

    package func buildImage(_ name: String, force: Bool, progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        progress("building \(name) on \(endpoint.url)")
        return try image(from: call("image.build", ["name": name, "force": force]))
    }

    package func removeImage(_ name: String, force: Bool) throws(MSBError) {
        try call("image.remove", ["name": name, "force": force])
    }

    package func pruneImages() throws(MSBError) -> Int {
        (try call("image.prune") as? [String: Any])?["removed"] as? Int ?? 0
    }
}
