import Foundation
import MSBCore
import MSBOS

/// Turns a prepared root directory into an installed image: `mkfs.ext4 -d` into a
/// read-only root disk sized with room for sandboxes to write (the file is sparse),
/// image.json, then an atomic swap into `$MSB_HOME/images/`.
struct RootDiskWriter {
    /// Room for sandboxes to write on top of the image.
    static let spareMiB = 2048

    let store: ImageStore
    let progress: (String) -> Void

    func install(name: String, rootfs: String, work: String, environment: [String], workingDirectory: String,
                 command: [String], user: String? = nil, digest: String?, source: String) throws(MSBError) -> ImageInfo {
        progress("writing the root disk (mkfs.ext4 -d)")
        let usedMiB = try diskUsageMiB(rootfs)
        let sizeMiB = usedMiB + usedMiB / 4 + Self.spareMiB
        try HostCommand.run(["/usr/sbin/mkfs.ext4", "-q", "-F", "-L", "msbroot", "-E", "root_owner=0:0", "-d", rootfs,
                             work + "/rootfs.ext4", "\(sizeMiB)M"], what: "mkfs.ext4")
        var diskDigest = digest ?? ""
        if digest == nil {
            diskDigest = "sha256:" + String(try HostCommand.run(["/usr/bin/sha256sum", work + "/rootfs.ext4"], what: "sha256sum").prefix(64))
        }
        let info = ImageInfo(
            name: name, kind: "disk", digest: diskDigest,
            sizeBytes: Int64(usedMiB) * 1024 * 1024, createdAt: Date(), environment: environment,
            workingDirectory: workingDirectory, source: source, command: command, user: user)
        try store.save(info, in: work)
        try? FileManager.default.removeItem(atPath: rootfs)
        let fm = FileManager.default
        let target = store.imageDirectory(name)
        let old = store.directory + "/.old-\(getpid())"
        // Sandboxes of an older build keep the base file they have open.
        if fm.fileExists(atPath: target) { try? fm.moveItem(atPath: target, toPath: old) }
        do {
            try fm.moveItem(atPath: work, toPath: target)
        } catch {
            throw MSBError(.stateStore, "cannot install image \(name): \(error)")
        }
        try? fm.removeItem(atPath: old)
        return info
    }

    private func diskUsageMiB(_ path: String) throws(MSBError) -> Int {
        let output = try HostCommand.run(["/usr/bin/du", "-sm", path], what: "du")
        guard let first = output.split(separator: "\t").first, let mib = Int(first) else {
            throw MSBError(.internalError, "cannot measure \(path)")
        }
        return mib
    }
}
