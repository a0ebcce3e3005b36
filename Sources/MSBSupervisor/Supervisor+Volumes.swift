import Glibc
import MSBCore
import MSBProtocol
import MSBVMM
import MSBVolumes

extension Supervisor {
    /// Starts one virtiofsd per volume and gives the VM a device for each (and RAM they can
    /// map); returns what the guest mounts. A named volume's directory is msb's own; a host
    /// directory is the canonical path recorded at create, opened without following links.
    func startVolumes(_ mounts: [VolumeMount], into vmConfig: inout VirtualMachineConfiguration) throws(MSBError) -> [GuestVolume] {
        guard !mounts.isEmpty else { return [] }
        let workDirectory = paths.sandboxDirectory(name) + "/volumes"
        mkdir(workDirectory, 0o700)
        var guestVolumes: [GuestVolume] = []
        for (index, mount) in mounts.enumerated() {
            let source: String
            switch mount.source {
            case .hostPath(let path): source = path
            case .named(let volume): source = paths.volumeDataDirectory(volume)
            }
            let tag = "msbvol\(index)"
            let server = try VolumeServer.start(VolumeServer.Launch(
                source: source, readOnly: mount.readOnly, tag: tag, guestPath: mount.guestPath,
                workDirectory: workDirectory, socketPath: paths.sandboxDirectory(name) + "/v\(index).sock",
                logPath: workDirectory + "/\(tag).log"))
            volumeServers.append(server)
            vmConfig.volumes.append(VolumeAttachment(descriptor: server.vmmDescriptor, tag: tag))
            guestVolumes.append(GuestVolume(tag: tag, guestPath: mount.guestPath, readOnly: mount.readOnly))
        }
        vmConfig.memory = .sharedAnonymous
        return guestVolumes
    }
}
