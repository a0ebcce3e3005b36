import Foundation
import MSBClient
import MSBCore

/// A JSON-RPC method: runs on a worker thread, returns a JSONSerialization value.
typealias RPCMethod = @Sendable (RPCDispatcher) -> (RPCCall) throws(MSBError) -> Any

extension RPCDispatcher {
    /// The five methods of the SDK contract (docs/REMOTE.md) keep exactly their shapes;
    /// the rest are msb's extensions, used by the CLI's remote backend.
    static let methods: [String: RPCMethod] = [
        "sandbox.start": RPCDispatcher.start,
        "sandbox.stop": RPCDispatcher.stop,
        "sandbox.repl.run": RPCDispatcher.replRun,
        "sandbox.command.run": RPCDispatcher.commandRun,
        "sandbox.metrics.get": RPCDispatcher.metricsGet,
        "sandbox.create": RPCDispatcher.create,
        "sandbox.list": RPCDispatcher.list,
        "sandbox.inspect": RPCDispatcher.inspect,
        "sandbox.remove": RPCDispatcher.remove,
        "image.list": RPCDispatcher.imageList,
        "image.pull": RPCDispatcher.imagePull,
        "image.build": RPCDispatcher.imageBuild,
        "image.remove": RPCDispatcher.imageRemove,
        "image.prune": RPCDispatcher.imagePrune,
        "server.info": RPCDispatcher.serverInfo,
    ]

    // MARK: Lifecycle

    /// Creates the sandbox if it does not exist (unless `create: false`), boots it if it is
    /// not running; a running one is left as it is.
    func start(_ call: RPCCall) throws(MSBError) -> Any {
        let namespace = try call.namespace()
        let name = try call.params.sandbox()
        let backend = try host.backend(namespace)
        let existing: SandboxInfo?
        do throws(MSBError) {
            existing = try backend.inspect(name)
        } catch where error.code == .notFound {
            existing = nil
        }
        guard let existing else {
            guard try call.params.bool("create") ?? true else { throw MSBError.sandboxNotFound(name) }
            let config = try sandboxConfig(name: name, call.params.object("config"))
            _ = try host.withCapacity(for: config, namespace: namespace) { () throws(MSBError) in try backend.create(config, start: true) }
            return "Sandbox \(name) started successfully"
        }
        if existing.status == .running || existing.status == .starting { return "Sandbox \(name) is already running" }
        _ = try host.withCapacity(for: existing.config, namespace: namespace) { () throws(MSBError) in try backend.start(name) }
        return "Sandbox \(name) started successfully"
    }

    func stop(_ call: RPCCall) throws(MSBError) -> Any {
        let namespace = try call.namespace()
        let name = try call.params.sandbox()
        _ = try host.backend(namespace).stop(name, force: try call.params.bool("force") ?? false)
        return "Sandbox \(name) stopped successfully"
    }

    func create(_ call: RPCCall) throws(MSBError) -> Any {
        let namespace = try call.namespace()
        let config = try sandboxConfig(name: call.params.sandbox(), call.params.object("config"))
        let backend = try host.backend(namespace)
        let info: SandboxInfo
        if try call.params.bool("start") ?? true {
            info = try host.withCapacity(for: config, namespace: namespace) { () throws(MSBError) in try backend.create(config, start: true) }
        } else {
            info = try backend.create(config, start: false)
        }
        return ["sandbox": RemoteWire.object(RemoteWire.Sandbox(info))]
    }

    func list(_ call: RPCCall) throws(MSBError) -> Any {
        let sandboxes: [SandboxInfo]
        if try call.params.string("namespace") == "*" {
            try call.requireAdmin("listing every namespace")
            sandboxes = try host.allSandboxes()
        } else {
            sandboxes = try host.backend(call.namespace()).list()
        }
        return ["sandboxes": sandboxes.map { RemoteWire.object(RemoteWire.Sandbox($0)) }]
    }

    func inspect(_ call: RPCCall) throws(MSBError) -> Any {
        let info = try host.backend(call.namespace()).inspect(call.params.sandbox())
        return ["sandbox": RemoteWire.object(RemoteWire.Sandbox(info))]
    }

    func remove(_ call: RPCCall) throws(MSBError) -> Any {
        let namespace = try call.namespace()
        let name = try call.params.sandbox()
        try host.backend(namespace).remove(name, force: try call.params.bool("force") ?? false)
        return "Sandbox \(name) removed successfully"
    }

    // MARK: Metrics

    func metricsGet(_ call: RPCCall) throws(MSBError) -> Any {
        let detail = try call.params.bool("detail") ?? false
        let name = try call.params.string("sandbox")
        if let name { try InputParsing.validateName(name) }
        let namespaces: [String]
        if try call.params.string("namespace") == "*" {
            try call.requireAdmin("metrics of every namespace")
            namespaces = host.namespaces()
        } else {
            namespaces = [try call.namespace()]
        }
        var entries: [Any] = []
        for namespace in namespaces {
            let backend = try host.backend(namespace)
            var names = [String]()
            if let name { names = [name] } else { names = try backend.list().map(\.name) }
            for sandbox in names {
                do throws(MSBError) {
                    entries.append(RemoteWire.object(RemoteWire.Metrics(try backend.metrics(sandbox), detail: detail)))
                } catch where error.code == .notFound && namespaces.count > 1 {
                    continue  // `*` with a name: only the namespaces that have it
                }
            }
        }
        if let name, entries.isEmpty { throw MSBError.sandboxNotFound(name) }
        return ["sandboxes": entries]
    }

    // MARK: Server

    func serverInfo(_ call: RPCCall) throws(MSBError) -> Any {
        let usage = try host.usage()
        let limits = configuration.limits
        return [
            "version": configuration.version, "dev": authority == nil, "namespace": call.claims.namespace,
            "limits": ["sandboxes": limits.maxRunningSandboxes, "memory_mib": limits.maxTotalMemoryMiB, "cpus": limits.maxTotalCPUs],
            "usage": ["sandboxes": usage.sandboxes, "memory_mib": usage.memoryMiB, "cpus": usage.cpus],
        ] as [String: Any]
    }
}
