import Foundation
import MSBClient
import MSBCore

/// `sandbox.snapshot.*`: named snapshots of a namespace's sandboxes. Each keeps a sandbox's
/// memory and disk on this host, so a namespace keeps at most `maxSnapshotsPerNamespace`;
/// and a sandbox started from one is held to the limits with the snapshot's memory and cpus.
extension RPCDispatcher {
    func snapshotCreate(_ call: RPCCall, _ p: RPC.SnapshotCreate.Params) throws(MSBError) -> RPC.SnapshotResult {
        let namespace = try call.namespace(p.namespace)
        let sandbox = try RPCParams.sandbox(p.sandbox)
        let name = try RPCParams.snapshot(p.snapshot)
        let backend = try host.backend(namespace)
        let info = try host.withSnapshotRoom(namespace: namespace, existing: { () throws(MSBError) in try backend.listSnapshots().count }) {
            () throws(MSBError) in try backend.createSnapshot(name, of: sandbox)
        }
        return RPC.SnapshotResult(shown(info, namespace: namespace))
    }

    func snapshotList(_ call: RPCCall, _ p: RPC.NamespaceParams) throws(MSBError) -> RPC.SnapshotList.Result {
        let namespace = try call.namespace(p.namespace)
        return RPC.SnapshotList.Result(try host.backend(namespace).listSnapshots().map { shown($0, namespace: namespace) })
    }

    func snapshotRemove(_ call: RPCCall, _ p: RPC.SnapshotRemove.Params) throws(MSBError) -> String {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.snapshot(p.snapshot)
        try host.backend(namespace).removeSnapshot(name)
        return "Snapshot \(name) removed successfully"
    }

    /// A snapshot as a client sees it: in the namespace it was asked for.
    private func shown(_ info: SnapshotInfo, namespace: String) -> SnapshotInfo {
        var info = info
        info.namespace = namespace
        return info
    }

    /// `config` with the image, memory and cpus of its snapshot (`config.snapshot`), looked
    /// up before any limit is checked: a fork is counted at the snapshot's size, whatever the
    /// client claimed.
    func withSnapshotResources(_ config: SandboxConfig, _ backend: LocalBackend) throws(MSBError) -> SandboxConfig {
        guard let name = config.snapshot else { return config }
        guard let snapshot = try backend.listSnapshots().first(where: { $0.name == name }) else {
            throw MSBError.snapshotNotFound(name)
        }
        var config = config
        config.adopt(snapshot)
        return config
    }
}
