import Glibc
import MSBProtocol

/// Mounts the sandbox's virtio-fs volumes (`setup.volumes`) after the root switch, so
/// they sit in the image's tree. Read-only is the host's to enforce (virtiofsd serves a
/// read-only view); the guest mounts such a volume read-only too, so writes fail at once
/// with EROFS rather than at the host.
enum GuestVolumes {
    /// Mounts every volume; returns what failed.
    static func mount(_ volumes: [GuestVolume]) -> [String] {
        var problems: [String] = []
        for volume in volumes {
            if let problem = mountOne(volume) { problems.append(problem) }
        }
        return problems
    }

    private static func mountOne(_ volume: GuestVolume) -> String? {
        guard volume.guestPath.hasPrefix("/"), !volume.guestPath.split(separator: "/").contains(where: { $0 == ".." }) else {
            return "bad volume path \(volume.guestPath)"
        }
        if let problem = makeDirectories(volume.guestPath) { return problem }
        var flags = UInt(MS_NODEV)
        if volume.readOnly { flags |= UInt(MS_RDONLY) }
        guard Glibc.mount(volume.tag, volume.guestPath, "virtiofs", flags, nil) == 0 else {
            return "cannot mount the volume at \(volume.guestPath): \(errnoText())"
        }
        return nil
    }

    /// `mkdir -p`, 0755 for what it creates.
    private static func makeDirectories(_ path: String) -> String? {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0, errno != EEXIST {
                return "cannot create \(current) for a volume: \(errnoText())"
            }
        }
        return nil
    }
}
