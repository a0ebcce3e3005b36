import Foundation
import MSBCore
import MSBOS

/// Turns a prepared root directory into a stored image: `mkfs.ext4 -d` into a read-only
/// root disk sized with room for sandboxes to write (the file is sparse), image.json, then
/// into the content-addressed store and a tag pointing at it (see ImageStore).
struct RootDiskWriter {
    /// Room for sandboxes to write on top of the image.
    static let spareMiB = 2048

    let store: ImageStore
    let progress: (String) -> Void

    /// `digest` names the image's content when it has one already (a pulled manifest);
    /// otherwise the root disk's own sha256 does.
    func install(name: String, rootfs: String, work: String, environment: [String], workingDirectory: String,
                 command: [String], user: String? = nil, digest: ContentDigest?, source: String) throws(MSBError) -> ImageInfo {
        progress("writing the root disk (mkfs.ext4 -d)")
        let usedMiB = try diskUsageMiB(rootfs)
        let sizeMiB = usedMiB + usedMiB / 4 + Self.spareMiB
        try HostCommand.run(["/usr/sbin/mkfs.ext4", "-q", "-F", "-L", "msbroot", "-E", "root_owner=0:0", "-d", rootfs,
                             work + "/rootfs.ext4", "\(sizeMiB)M"], what: "mkfs.ext4")
        let contentDigest: ContentDigest
        if let digest { contentDigest = digest } else { contentDigest = try ContentDigest.ofFile(work + "/rootfs.ext4") }
        var info = ImageInfo(
            name: name, kind: "disk", digest: contentDigest.description,
            sizeBytes: Int64(usedMiB) * 1024 * 1024, createdAt: Date(), environment: environment,
            workingDirectory: workingDirectory, source: source, command: command, user: user)
        try store.save(info, in: work)
        try? FileManager.default.removeItem(atPath: rootfs)
        try store.install(work, digest: contentDigest, name: name)
        info.name = name
        return info
    }

    private func diskUsageMiB(_ path: String) throws(MSBError) -> Int {
        let output = try HostCommand.run(["/usr/bin/du", "-sm", path], what: "du")
        guard let first = output.split(separator: "\t").first, let mib = Int(first, radix: 10) else {
            throw MSBError(.internalError, "cannot measure the image's root directory")
        }
        return mib
    }
}
