import Foundation
import MSBClient
import MSBCore

/// A JSON-RPC method: runs on a worker thread and returns the encoded response for the id.
typealias RPCMethod = @Sendable (RPCDispatcher, RPCCall, RPCID) throws(MSBError) -> [UInt8]

extension RPCDispatcher {
    /// The five methods of the SDK contract (docs/REMOTE.md) keep exactly their shapes;
    /// the rest are msb's extensions, used by the CLI's remote backend.
    static let methods: [String: RPCMethod] = Dictionary(uniqueKeysWithValues: [
        method(RPC.Start.self) { $0.start },
        method(RPC.Stop.self) { $0.stop },
        method(RPC.Pause.self) { $0.pause },
        method(RPC.Resume.self) { $0.resume },
        method(RPC.ReplRun.self) { $0.replRun },
        method(RPC.CommandRun.self) { $0.commandRun },
        method(RPC.MetricsGet.self) { $0.metricsGet },
        method(RPC.Create.self) { $0.create },
        method(RPC.List.self) { $0.list },
        method(RPC.Inspect.self) { $0.inspect },
        method(RPC.Wait.self) { $0.wait },
        method(RPC.Drain.self) { $0.drain },
        method(RPC.Logs.self) { $0.logs },
        method(RPC.Remove.self) { $0.remove },
        method(RPC.SnapshotCreate.self) { $0.snapshotCreate },
        method(RPC.SnapshotList.self) { $0.snapshotList },
        method(RPC.SnapshotRemove.self) { $0.snapshotRemove },
        method(RPC.VolumeCreate.self) { $0.volumeCreate },
        method(RPC.VolumeList.self) { $0.volumeList },
        method(RPC.VolumeInspect.self) { $0.volumeInspect },
        method(RPC.VolumeRemove.self) { $0.volumeRemove },
        method(RPC.ImageList.self) { $0.imageList },
        method(RPC.ImagePull.self) { $0.imagePull },
        method(RPC.ImageBuild.self) { $0.imageBuild },
        method(RPC.ImageRemove.self) { $0.imageRemove },
        method(RPC.ImagePrune.self) { $0.imagePrune },
        method(RPC.ServerInfo.self) { $0.serverInfo },
        method(RPC.FsRead.self) { $0.fsRead },
        method(RPC.FsWrite.self) { $0.fsWrite },
        method(RPC.FsList.self) { $0.fsList },
        method(RPC.FsStat.self) { $0.fsStat },
        method(RPC.FsMkdir.self) { $0.fsMkdir },
        method(RPC.FsRemove.self) { $0.fsRemove },
        method(RPC.FsRename.self) { $0.fsRename },
    ])

    /// Binds a typed implementation: params decoded, result encoded in the response.
    private static func method<M: RPCMethodType>(
        _ type: M.Type, _ body: @escaping @Sendable (RPCDispatcher) -> (RPCCall, M.Params) throws(MSBError) -> M.Result
    ) -> (String, RPCMethod) {
        (M.name, { dispatcher, call, id throws(MSBError) in
            let params = try call.params.decode(M.Params.self)
            let result = try body(dispatcher)(call, params)
            return RemoteWire.encoded(RPCResponse(id: id, result: result))
        })
    }

    // MARK: Lifecycle

    /// Creates the sandbox if it does not exist (unless `create: false`), boots it if it is
    /// not running; a running one is left as it is.
    func start(_ call: RPCCall, _ p: RPC.Start.Params) throws(MSBError) -> String {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.sandbox(p.sandbox)
        let backend = try sandboxBackend(namespace)
        let fetch = try imageFetch(call, p.config)
        if p.replace == true {
            guard p.create ?? true else {
                throw MSBError(.invalidArgument, "invalid params: 'replace' creates the sandbox afresh; it cannot go with 'create': false")
            }
            // Checked (and the image fetched) before the old sandbox goes: a refusal leaves it as it was.
            let config = try withSnapshotResources(sandboxConfig(name: name, p.config), backend)
            _ = try backend.dependenciesToStart(of: config)
            try ensureImage(of: config, fetch, backend, namespace: namespace)
            try backend.removeIfPresent(name)
        }
        let existing: SandboxInfo?
        do throws(MSBError) {
            existing = try backend.inspect(name)
        } catch where error.code == .notFound {
            existing = nil
        }
        guard let existing else {
            guard p.create ?? true else { throw MSBError.sandboxNotFound(name) }
            let config = try withSnapshotResources(sandboxConfig(name: name, p.config), backend)
            try ensureImage(of: config, fetch, backend, namespace: namespace)
            try startDependencies(of: config, backend, namespace: namespace)
            _ = try host.withCapacity(for: config, namespace: namespace) { () throws(MSBError) in try backend.create(config, start: true) }
            return "Sandbox \(name) started successfully"
        }
        if existing.status == .running || existing.status == .starting { return "Sandbox \(name) is already running" }
        if existing.status == .draining {
            throw MSBError(.invalidState, "failed to start: sandbox \(name) is draining", hint: "it stops once its running commands end; start it after that")
        }
        var stopped = existing
        if let params = p.config { stopped = try applyStartChanges(params, to: existing, backend) }
        try startDependencies(of: stopped.config, backend, namespace: namespace)
        _ = try host.withCapacity(for: stopped.config, namespace: namespace) { () throws(MSBError) in try backend.start(name) }
        return "Sandbox \(name) started successfully"
    }

    /// Starts what `config` depends on, each under the namespace's limits like any start.
    private func startDependencies(of config: SandboxConfig, _ backend: LocalBackend, namespace: String) throws(MSBError) {
        for dependency in try backend.dependenciesToStart(of: config) { try startDependency(dependency, backend, namespace: namespace) }
    }

    private func startDependency(_ sandbox: SandboxInfo, _ backend: LocalBackend, namespace: String) throws(MSBError) {
        _ = try host.withCapacity(for: sandbox.config, namespace: namespace) { () throws(MSBError) in try backend.start(sandbox.name) }
    }

    func stop(_ call: RPCCall, _ p: RPC.SandboxParams) throws(MSBError) -> String {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.sandbox(p.sandbox)
        _ = try host.backend(namespace).stop(name, force: p.force ?? false)
        return "Sandbox \(name) stopped successfully"
    }

    func pause(_ call: RPCCall, _ p: RPC.SandboxParams) throws(MSBError) -> String {
        let name = try RPCParams.sandbox(p.sandbox)
        _ = try host.backend(try call.namespace(p.namespace)).setPaused(name, true)
        return "Sandbox \(name) paused"
    }

    func resume(_ call: RPCCall, _ p: RPC.SandboxParams) throws(MSBError) -> String {
        let name = try RPCParams.sandbox(p.sandbox)
        _ = try host.backend(try call.namespace(p.namespace)).setPaused(name, false)
        return "Sandbox \(name) resumed"
    }

    func create(_ call: RPCCall, _ p: RPC.Create.Params) throws(MSBError) -> RPC.SandboxResult {
        let namespace = try call.namespace(p.namespace)
        let backend = try sandboxBackend(namespace)
        let config = try withSnapshotResources(sandboxConfig(name: RPCParams.sandbox(p.sandbox), p.config), backend)
        let dependencies = try backend.dependenciesToStart(of: config)
        try ensureImage(of: config, imageFetch(call, p.config), backend, namespace: namespace)
        if p.replace == true { try backend.removeIfPresent(config.name) }
        let info: SandboxInfo
        if p.start ?? true {
            for dependency in dependencies { try startDependency(dependency, backend, namespace: namespace) }
            info = try host.withCapacity(for: config, namespace: namespace) { () throws(MSBError) in try backend.create(config, start: true) }
        } else {
            info = try backend.create(config, start: false)
        }
        return RPC.SandboxResult(shown(info))
    }

    func list(_ call: RPCCall, _ p: RPC.NamespaceParams) throws(MSBError) -> RPC.SandboxListResult {
        if p.namespace == "*" {
            try call.requireAdmin("listing every namespace")
            return RPC.SandboxListResult(try host.allSandboxes().map(shown))
        }
        return RPC.SandboxListResult(try host.backend(call.namespace(p.namespace)).list().map(shown))
    }

    func inspect(_ call: RPCCall, _ p: RPC.SandboxParams) throws(MSBError) -> RPC.SandboxResult {
        let namespace = try call.namespace(p.namespace)
        return RPC.SandboxResult(shown(try host.backend(namespace).inspect(RPCParams.sandbox(p.sandbox))))
    }

    /// Holds a worker (and one of the namespace's call slots) for at most the wait limit.
    func wait(_ call: RPCCall, _ p: RPC.Wait.Params) throws(MSBError) -> RPC.SandboxResult {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.sandbox(p.sandbox)
        let seconds = try RPCParams.waitSeconds(p.timeout, limits: configuration.limits)
        return RPC.SandboxResult(shown(try host.backend(namespace).wait(name, timeoutSeconds: seconds)))
    }

    /// Returns once the sandbox is draining; `sandbox.wait` waits for its end.
    func drain(_ call: RPCCall, _ p: RPC.Drain.Params) throws(MSBError) -> RPC.SandboxResult {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.sandbox(p.sandbox)
        var timeoutSeconds: Double?
        if let timeout = p.timeout {
            guard timeout.isFinite, timeout >= 0 else { throw RPCParams.invalid("timeout", "a number of seconds, 0 or more") }
            timeoutSeconds = timeout
        }
        return RPC.SandboxResult(shown(try host.backend(namespace).drain(name, timeoutSeconds: timeoutSeconds)))
    }

    func remove(_ call: RPCCall, _ p: RPC.SandboxParams) throws(MSBError) -> String {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.sandbox(p.sandbox)
        try host.backend(namespace).remove(name, force: p.force ?? false)
        return "Sandbox \(name) removed successfully"
    }

    /// A sandbox as a client sees it: a status reason may name host files.
    func shown(_ info: SandboxInfo) -> SandboxInfo {
        var info = info
        info.statusReason = info.statusReason.map { redact($0) }
        info.boot = info.boot.map { HostPathRedactor.withoutAbsolutePaths(redact($0)) }
        return info
    }

    // MARK: Metrics

    func metricsGet(_ call: RPCCall, _ p: RPC.MetricsGet.Params) throws(MSBError) -> RPC.MetricsGet.Result {
        let detail = p.detail ?? false
        if let name = p.sandbox { try InputParsing.validateName(name) }
        let namespaces: [String]
        if p.namespace == "*" {
            try call.requireAdmin("metrics of every namespace")
            namespaces = host.namespaces()
        } else {
            namespaces = [try call.namespace(p.namespace)]
        }
        var entries: [RemoteWire.Metrics] = []
        for namespace in namespaces {
            let backend = try host.sandboxes(namespace)
            var names = [String]()
            if let name = p.sandbox { names = [name] } else { names = try backend.list().map(\.name) }
            for sandbox in names {
                do throws(MSBError) {
                    entries.append(RemoteWire.Metrics(try backend.metrics(sandbox), detail: detail))
                } catch where error.code == .notFound {
                    // A name that is not there (or went while listing) is left out: the SDKs'
                    // reference answers an empty list, and `*` keeps the namespaces that have it.
                    continue
                }
            }
        }
        return RPC.MetricsGet.Result(sandboxes: entries)
    }

    // MARK: Server

    func serverInfo(_ call: RPCCall, _ p: RPC.NamespaceParams) throws(MSBError) -> RPC.ServerInfo.Result {
        let usage = try host.usage()
        let limits = configuration.limits
        return RPC.ServerInfo.Result(
            version: configuration.version, dev: authority == nil, namespace: call.claims.namespace,
            limits: .init(sandboxes: limits.maxRunningSandboxes, memory_mib: limits.maxTotalMemoryMiB, cpus: limits.maxTotalCPUs),
            usage: .init(sandboxes: usage.sandboxes, memory_mib: usage.memoryMiB, cpus: usage.cpus))
    }
}
