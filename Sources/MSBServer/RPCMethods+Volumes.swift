import Foundation
import MSBClient
import MSBCore

/// `volume.*` and `config.volumes`: a namespace's named volumes live in its own home
/// (`namespaces/NS/volumes/NAME`), so a namespace sees and mounts only its own; host
/// directories only inside the operator's `--allow-volume` ones, where links lead included.
extension RPCDispatcher {
    func volumeCreate(_ call: RPCCall, _ p: RPC.VolumeParams) throws(MSBError) -> RPC.VolumeResult {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.volume(p.volume)
        return RPC.VolumeResult(shown(try sandboxBackend(namespace).createVolume(name)))
    }

    func volumeList(_ call: RPCCall, _ p: RPC.NamespaceParams) throws(MSBError) -> RPC.VolumeList.Result {
        let namespace = try call.namespace(p.namespace)
        return RPC.VolumeList.Result(try sandboxBackend(namespace).listVolumes().map(shown))
    }

    func volumeInspect(_ call: RPCCall, _ p: RPC.VolumeParams) throws(MSBError) -> RPC.VolumeResult {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.volume(p.volume)
        return RPC.VolumeResult(shown(try sandboxBackend(namespace).inspectVolume(name)))
    }

    func volumeRemove(_ call: RPCCall, _ p: RPC.VolumeParams) throws(MSBError) -> String {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.volume(p.volume)
        try sandboxBackend(namespace).removeVolume(name)
        return "Volume \(name) removed successfully"
    }

    /// A volume as a client sees it: where it lies on the host is the server's business.
    private func shown(_ info: VolumeInfo) -> VolumeInfo {
        var info = info
        info.hostPath = nil
        return info
    }

    /// A namespace's backend, held to what this server lets remote clients mount and keep.
    func sandboxBackend(_ namespace: String) throws(MSBError) -> LocalBackend {
        let backend = try host.backend(namespace)
        backend.allowedVolumeRoots = configuration.volumeAllowList
        backend.volumeLimit = configuration.limits.maxVolumesPerNamespace
        return backend
    }

    /// The volumes of a `sandbox.start` / `sandbox.create` config, parsed and checked; a
    /// host path outside `--allow-volume` (as written, or where its links lead) is 403
    /// before anything is touched. The backend resolves and checks again what it stores.
    func volumeMounts(_ texts: [String]?, snapshot: Bool) throws(MSBError) -> [VolumeMount]? {
        guard let texts, !texts.isEmpty else { return nil }
        guard texts.count <= VolumeMount.maximumPerSandbox else {
            throw MSBError(.invalidArgument, "invalid params: at most \(VolumeMount.maximumPerSandbox) 'volumes'")
        }
        if snapshot {
            throw MSBError(.invalidArgument, "invalid params: 'snapshot' cannot be combined with 'volumes': snapshots cannot carry volumes")
        }
        var mounts: [VolumeMount] = []
        for text in texts { mounts.append(try VolumeMount.parse(text)) }
        try VolumeMount.check(mounts)
        for mount in mounts {
            if case .named(let name) = mount.source { _ = try RPCParams.volume(name) }
        }
        let resolved = try VolumeMount.resolvingHostPaths(mounts, allowedRoots: configuration.volumeAllowList)
        try checkOutsideServerState(resolved, given: mounts)
        return resolved
    }

    /// An allowed directory that holds (or lies in) the server's own state would hand a
    /// client the signing secret and every namespace's sandboxes and volumes: refused, whatever
    /// `--allow-volume` says.
    private func checkOutsideServerState(_ resolved: [VolumeMount], given: [VolumeMount]) throws(MSBError) {
        let paths = configuration.paths
        let state = [paths.home, paths.images, paths.templates, paths.artifacts].map { (try? VolumeMount.resolvedHostDirectory($0)) ?? $0 }
        for (mount, asGiven) in zip(resolved, given) {
            guard case .hostPath(let path) = mount.source, case .hostPath(let shown) = asGiven.source else { continue }
            if state.contains(where: { VolumeMount.lies(path, inside: $0) || VolumeMount.lies($0, inside: path) }) {
                throw MSBError(.accessDenied, "mounting host path \(PrintableText.escaped(shown, maxScalars: 200)) is not allowed on this server: it holds msb's own state",
                               hint: "share a directory that neither holds nor lies inside the server's MSB_HOME, images, templates or guest")
            }
        }
    }
}
