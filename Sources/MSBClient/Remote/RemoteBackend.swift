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
                                timeoutSeconds: Double = callTimeoutSeconds, trust: HTTPTransport.TLSTrust? = nil) throws(MSBError) -> HTTPTransport.Response {
        var headers = endpoint.headers
        if body != nil { headers.append(("Content-Type", "application/json")) }
        do {
            return try HTTPTransport.send(method, endpoint.origin + path, headers: headers, body: body,
                                          timeoutSeconds: timeoutSeconds, maxBodyBytes: maxResponseBytes, trust: trust ?? endpoint.trust)
        } catch {
            throw unreachable(endpoint, error)
        }
    }

    static func unreachable(_ endpoint: RemoteEndpoint, _ failure: HTTPTransport.Failure) -> MSBError {
        if failure.untrustedCertificate {
            let hint = endpoint.caCertificateFile.map { "\($0) (--cacert / MSB_CACERT) did not sign the server's certificate" }
                ?? "give the CA that signed it with --cacert FILE (or MSB_CACERT)"
            return MSBError(.accessDenied, "cannot reach msb server at \(endpoint.url): \(failure.reason)", hint: hint)
        }
        return MSBError(.agentFailure, "cannot reach msb server at \(endpoint.url): \(failure.reason)",
                        hint: "check that 'msb server start' runs there, and --server / MSB_SERVER_URL")
    }

    // MARK: JSON-RPC

    /// Calls `method` in the endpoint's namespace and returns its `result`.
    /// Calls a method and returns its typed result; a JSON-RPC error is thrown as the very
    /// MSBError the server had.
    package func call<M: RPCMethodType>(_ method: M.Type, _ params: M.Params) throws(MSBError) -> M.Result {
        let request = RPCRequest(method: M.name, params: params, id: .string(UUID().uuidString))
        let response = try Self.request(endpoint, .POST, path: RemoteWire.rpcPath, body: RemoteWire.encoded(request))
        guard let decoded = try? JSONDecoder.msb.decode(RPCResponse<M.Result>.self, from: Data(response.body)) else {
            if let failed = try? JSONDecoder.msb.decode(RPCResponse<String>.self, from: Data(response.body)), let error = failed.error {
                throw error.error
            }
            let text = String(decoding: response.body.prefix(200), as: UTF8.self)
            throw MSBError(.agentFailure, "msb server at \(endpoint.url) answered HTTP \(response.status) without a valid answer: \(text)",
                           hint: "is \(endpoint.url) an msb server?")
        }
        if let error = decoded.error { throw error.error }
        guard response.status == 200, let result = decoded.result else {
            throw MSBError(.agentFailure, "msb server at \(endpoint.url) answered HTTP \(response.status) without a result")
        }
        return result
    }

    private var namespace: String { endpoint.namespace }

    private func sandboxParams(_ name: String, force: Bool? = nil) -> RPC.SandboxParams {
        RPC.SandboxParams(sandbox: name, namespace: namespace, force: force)
    }

    // MARK: Lifecycle

    /// With `fetch`, the server pulls or builds the image (its policy, credentials and
    /// `insecure` travel in the config); a build on first use that outlasts one call is
    /// answered "not ready", and the create is asked again until it is done.
    package func create(_ config: SandboxConfig, start: Bool, fetch: ImageFetch?) throws(MSBError) -> SandboxInfo {
        var params = RPC.SandboxConfigParams(config)
        if let fetch {
            params.pull_policy = fetch.policy.rawValue
            params.registry_auth = fetch.credentials.map(RPC.RegistryAuth.text)
            if fetch.insecure { params.insecure_registry = true }
        } else {
            params.pull_policy = PullPolicy.never.rawValue
        }
        let deadline = MonotonicClock.now() + 1800  // as long as a local fetch waits for another
        while true {
            do throws(MSBError) {
                return try call(RPC.Create.self, .init(sandbox: config.name, namespace: namespace, config: params, start: start)).sandbox.info
            } catch where error.code == .notReady && MonotonicClock.now() < deadline {
                fetch?.progress(error.message)
                sleep(5)
            }
        }
    }

    package func start(_ name: String) throws(MSBError) -> SandboxInfo {
        _ = try call(RPC.Start.self, .init(sandbox: name, namespace: namespace, create: false))
        return try inspect(name)
    }

    package func stop(_ name: String, force: Bool) throws(MSBError) -> SandboxInfo {
        _ = try call(RPC.Stop.self, sandboxParams(name, force: force))
        return try inspect(name)
    }

    package func setPaused(_ name: String, _ paused: Bool) throws(MSBError) -> SandboxInfo {
        if paused { _ = try call(RPC.Pause.self, sandboxParams(name, force: false)) } else { _ = try call(RPC.Resume.self, sandboxParams(name, force: false)) }
        return try inspect(name)
    }

    package func remove(_ name: String, force: Bool) throws(MSBError) {
        _ = try call(RPC.Remove.self, sandboxParams(name, force: force))
    }

    package func list() throws(MSBError) -> [SandboxInfo] {
        try call(RPC.List.self, .init(namespace: namespace)).sandboxes.map(\.info)
    }

    package func inspect(_ name: String) throws(MSBError) -> SandboxInfo {
        try call(RPC.Inspect.self, sandboxParams(name)).sandbox.info
    }

    /// One bounded `sandbox.wait`: the server answers within its wait limit at the latest.
    package func drain(_ name: String, timeoutSeconds: Double?) throws(MSBError) -> SandboxInfo {
        try call(RPC.Drain.self, .init(sandbox: name, namespace: namespace, timeout: timeoutSeconds)).sandbox.info
    }

    package func wait(_ name: String, timeoutSeconds: Double) throws(MSBError) -> SandboxInfo {
        try call(RPC.Wait.self, .init(sandbox: name, namespace: namespace, timeout: max(0, timeoutSeconds))).sandbox.info
    }

    // MARK: Streams

    /// A connection to the sandbox's supervisor through the server, or the reason there is none.
    package func openSupervisorStream(_ name: String, purpose: SupervisorStreamPurpose) throws(MSBError) -> Int32 {
        try InputParsing.validateName(name)
        let path = "\(RemoteWire.attachPath)?namespace=\(endpoint.namespace)&sandbox=\(name)&purpose=\(purpose.rawValue)"
        do {
            return try UpgradedStream.open(host: endpoint.host, port: Int(endpoint.port), tls: endpoint.tls, trust: endpoint.trust, path: path,
                                           protocolName: RemoteWire.attachProtocol, headers: endpoint.headers)
        } catch {
            switch error {
            case .unreachable(let failure):
                throw Self.unreachable(endpoint, failure)
            case .refused(let status, let body):
                if let refusal = try? JSONDecoder.msb.decode(RPCResponse<String>.self, from: Data(body)), let error = refusal.error {
                    throw error.error
                }
                throw MSBError(.agentFailure, "msb server at \(endpoint.url) refused the connection to \(name) (HTTP \(status))")
            }
        }
    }

    // MARK: Snapshots

    package func createSnapshot(_ name: String, of sandbox: String) throws(MSBError) -> SnapshotInfo {
        try call(RPC.SnapshotCreate.self, .init(sandbox: sandbox, namespace: namespace, snapshot: name)).snapshot.info
    }

    package func listSnapshots() throws(MSBError) -> [SnapshotInfo] {
        try call(RPC.SnapshotList.self, .init(namespace: namespace)).snapshots.map(\.info)
    }

    package func removeSnapshot(_ name: String) throws(MSBError) {
        _ = try call(RPC.SnapshotRemove.self, .init(snapshot: name, namespace: namespace))
    }

    // MARK: Volumes

    package func createVolume(_ name: String) throws(MSBError) -> VolumeInfo {
        try call(RPC.VolumeCreate.self, .init(volume: name, namespace: namespace)).volume.info
    }

    package func listVolumes() throws(MSBError) -> [VolumeInfo] {
        try call(RPC.VolumeList.self, .init(namespace: namespace)).volumes.map(\.info)
    }

    package func inspectVolume(_ name: String) throws(MSBError) -> VolumeInfo {
        try call(RPC.VolumeInspect.self, .init(volume: name, namespace: namespace)).volume.info
    }

    package func removeVolume(_ name: String) throws(MSBError) {
        _ = try call(RPC.VolumeRemove.self, .init(volume: name, namespace: namespace))
    }

    /// At most `RPC.Logs.maxBytes` per call: the server's answer is checked against what was asked.
    package func logs(_ name: String, maxBytes: Int) throws(MSBError) -> SandboxLog {
        let limit = min(max(0, maxBytes), RPC.Logs.maxBytes)
        let result = try call(RPC.Logs.self, .init(sandbox: name, namespace: namespace, max_bytes: Double(limit)))
        // Bounded before decoding: base64 is 4 bytes per 3.
        guard result.content.utf8.count <= (limit + 2) / 3 * 4, let bytes = Data(base64Encoded: result.content), bytes.count <= limit else {
            throw MSBError(.internalError, "the server's log of sandbox \(name) is not what was asked for")
        }
        return SandboxLog(bytes: Array(bytes), truncated: result.truncated || maxBytes > limit)
    }

    package func metrics(_ name: String) throws(MSBError) -> SandboxMetrics {
        guard let first = try call(RPC.MetricsGet.self, .init(sandbox: name, namespace: namespace, detail: true)).sandboxes.first else {
            throw MSBError.sandboxNotFound(name)
        }
        return first.metrics
    }

    // MARK: Images

    package func listImages() throws(MSBError) -> [ImageInfo] {
        try call(RPC.ImageList.self, .init(namespace: namespace)).images
    }

    package func pullImage(_ reference: String, insecure: Bool, credentials: String?,
                           progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        progress("pulling \(reference) on \(endpoint.url)")
        return try call(RPC.ImagePull.self, .init(reference: reference, namespace: namespace, insecure: insecure, credentials: credentials)).image
    }

    package func buildImage(_ name: String, force: Bool, progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        progress("building \(name) on \(endpoint.url)")
        return try call(RPC.ImageBuild.self, .init(name: name, force: force)).image
    }

    package func removeImage(_ name: String, force: Bool) throws(MSBError) {
        _ = try call(RPC.ImageRemove.self, .init(name: name, force: force))
    }

    package func pruneImages() throws(MSBError) -> Int {
        try call(RPC.ImagePrune.self, .init(namespace: namespace)).removed
    }
}
