import Foundation
import MSBCore
import MSBOS
import MSBVMM

/// Named snapshots of this home's sandboxes (see Supervisor+Snapshots for how a running
/// guest is saved and how a fork resumes it).
extension LocalBackend {
    package func createSnapshot(_ name: String, of sandbox: String) throws(MSBError) -> SnapshotInfo {
        try InputParsing.validateSnapshotName(name)
        let record = try existing(sandbox).reconciled()
        guard (record.config.volumes ?? []).isEmpty else {
            throw MSBError(.unsupported, "failed to snapshot: sandbox \(sandbox) has volumes",
                           hint: "snapshots cannot carry volumes (QEMU cannot save a virtio-fs device)")
        }
        guard record.status == .running || record.status == .paused else {
            throw MSBError(.invalidState, "failed to snapshot: sandbox \(sandbox) is \(record.status.rawValue)",
                           hint: record.status.expectsSupervisor ? "try again in a moment" : "start it with 'msb start \(sandbox)'")
        }
        let snapshots = SnapshotStore(directory: paths.snapshots)
        try paths.prepare(including: [paths.snapshots])
        return try snapshots.withLock(name) { () throws(MSBError) -> SnapshotInfo in
            guard !snapshots.exists(name) else {
                throw MSBError(.alreadyExists, "snapshot \(name) already exists", hint: "remove it with 'msb snapshot rm \(name)' or pick another name")
            }
            // Work directories of creates killed on the way (old ones only: others may run).
            snapshots.templates.removeLeftovers()
            let work = try snapshots.makeWorkDirectory()
            var installed = false
            defer { if !installed { try? FileManager.default.removeItem(atPath: work) } }
            guard let fd = try? UnixSocket.connect(path: paths.controlSocket(sandbox)) else {
                throw try notRunningError(sandbox, action: "snapshot")
            }
            do throws(MSBError) { try SupervisorConnection(fd: fd).saveSnapshot(directory: work) } catch {
                throw MSBError(error.code, "failed to snapshot sandbox \(sandbox): \(error.message)", hint: error.hint)
            }
            let config = record.config
            var info = SnapshotInfo(name: name, namespace: namespace, source: sandbox, image: config.image, imageDigest: config.imageDigest,
                                    cpus: config.cpus, memoryMiB: config.memoryMiB, createdAt: Date(), sizeBytes: 0)
            try snapshots.install(work, record: SnapshotRecord(info: info, config: config, parent: config.snapshot))
            installed = true
            info.sizeBytes = snapshots.sizeBytes(name)
            return info
        }
    }

    package func listSnapshots() throws(MSBError) -> [SnapshotInfo] {
        let snapshots = SnapshotStore(directory: paths.snapshots)
        return snapshots.list().map { record in
            var info = record.info
            info.namespace = namespace
            info.sizeBytes = snapshots.sizeBytes(info.name)
            return info
        }
    }

    /// Refused while a sandbox or another snapshot lies on it: their disks need its layer.
    package func removeSnapshot(_ name: String) throws(MSBError) {
        let snapshots = SnapshotStore(directory: paths.snapshots)
        _ = try snapshots.record(name)
        let forks = try list().filter { $0.config.snapshot == name }.map(\.name)
        let children = snapshots.list().filter { $0.parent == name }.map { "snapshot " + $0.info.name }
        let users = forks + children
        guard users.isEmpty else {
            throw MSBError(.invalidState, "snapshot \(name) is in use by \(users.joined(separator: ", "))",
                           hint: forks.isEmpty ? "remove those snapshots first" : "remove the sandboxes made from it first ('msb rm \(forks[0])')")
        }
        try snapshots.withLock(name) { () throws(MSBError) in snapshots.remove(name) }
    }

    /// The config of a sandbox made from `snapshot`: its image, size and defaults are the
    /// snapshot's (the guest's memory is that size); the request's own -e, -w, -u come on top.
    func forkConfig(_ requested: SandboxConfig, snapshot: String) throws(MSBError) -> SandboxConfig {
        let source = try SnapshotStore(directory: paths.snapshots).record(snapshot).config
        var config = requested
        config.image = source.image
        config.imageDigest = source.imageDigest
        config.cpus = source.cpus
        config.memoryMiB = source.memoryMiB
        config.accelerator = source.accelerator
        config.environment = source.environment + requested.environment
        if config.workingDirectory.isEmpty { config.workingDirectory = source.workingDirectory }
        if config.user == nil { config.user = source.user }
        if config.maxDurationMilliseconds == nil { config.maxDurationMilliseconds = source.maxDurationMilliseconds }
        config.coldBoot = nil
        return config
    }
}
