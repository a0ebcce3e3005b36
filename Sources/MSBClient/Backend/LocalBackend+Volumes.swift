import Foundation
import MSBCore

/// Named volumes of this home (`msb volume`), and the volumes of a sandbox being created.
/// The records and their atomicity are StateStore's; the data lies in
/// `MSBPaths.volumeDataDirectory`, which the supervisor shares into the guest.
extension LocalBackend {
    package func createVolume(_ name: String) throws(MSBError) -> VolumeInfo {
        described(try store().createVolume(name, limit: volumeLimit), usedBy: [])
    }

    package func listVolumes() throws(MSBError) -> [VolumeInfo] {
        let store = try store()
        let sandboxes = try store.list()
        return try store.volumes().map { record in
            described(record, usedBy: sandboxes.filter { $0.config.mounts(volume: record.name) }.map(\.config.name))
        }
    }

    package func inspectVolume(_ name: String) throws(MSBError) -> VolumeInfo {
        try StateStore.validateVolumeName(name)
        let store = try store()
        guard let record = try store.volume(name) else { throw MSBError.volumeNotFound(name) }
        var info = described(record, usedBy: try store.sandboxes(using: name))
        info.sizeBytes = VolumeInfo.sizeBytes(of: paths.volumeDataDirectory(name))
        return info
    }

    package func removeVolume(_ name: String) throws(MSBError) {
        try store().removeVolume(name)
    }

    private func described(_ record: VolumeRecord, usedBy: [String]) -> VolumeInfo {
        VolumeInfo(name: record.name, namespace: namespace, createdAt: record.createdAt,
                   hostPath: paths.volumeDataDirectory(record.name), usedBy: usedBy)
    }

    /// The volumes a new sandbox keeps: checked together, host directories resolved (and
    /// held to `allowedVolumeRoots`); named volumes are made when its row is written. Nil
    /// for none. A snapshot cannot carry them (QEMU 7.2 cannot save a virtio-fs device).
    func resolvedVolumes(_ config: SandboxConfig) throws(MSBError) -> [VolumeMount]? {
        guard let volumes = config.volumes, !volumes.isEmpty else { return nil }
        if config.snapshot != nil {
            throw MSBError(.invalidArgument, "a sandbox made from a snapshot cannot have volumes",
                           hint: "snapshots cannot carry volumes (QEMU cannot save a virtio-fs device); drop the volumes or the snapshot")
        }
        try VolumeMount.check(volumes)
        for mount in volumes {
            if case .named(let name) = mount.source { try StateStore.validateVolumeName(name) }
        }
        return try VolumeMount.resolvingHostPaths(volumes, allowedRoots: allowedVolumeRoots)
    }
}
