import Foundation
import MSBCore
import MSBOS

/// Images under `$MSB_IMAGES` (default `$MSB_HOME/images`), content-addressed:
///
///     .store/<sha256 hex>/     image.json + rootfs.ext4, written once, never changed
///     <name>  -> .store/<hex>  a tag: a symlink, moved by an atomic rename
///     .blobs/sha256/<hex>      registry blobs, kept only after their digest matched
///     .tmp-*/                  work directories of pulls and builds (one each, mkdtemp)
///
/// A sandbox's overlay names its image's stored root disk, so re-pulling or rebuilding a
/// name moves the tag and never changes a disk under an existing sandbox. The base image
/// is the guest initramfs itself and always exists.
package struct ImageStore: Sendable {
    package let paths: MSBPaths
    package static let baseName = "base"

    package init(paths: MSBPaths) { self.paths = paths }

    package var directory: String { paths.images }
    var storeDirectory: String { directory + "/.store" }

    /// A tag's path. Reference characters that cannot be in a file name are percent-encoded.
    package func imageDirectory(_ name: String) -> String {
        directory + "/" + name.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
    }
    func storedDirectory(_ digest: ContentDigest) -> String { storeDirectory + "/" + digest.hex }
    package func rootDisk(_ digest: ContentDigest) -> String { paths.storedImageRootDisk(digestHex: digest.hex) }

    package func canonicalName(_ name: String) -> String {
        if FileManager.default.fileExists(atPath: imageDirectory(name) + "/image.json") { return name }
        return ImageInfo.aliases[name] ?? name
    }

    package func get(_ requested: String) throws(MSBError) -> ImageInfo {
        let name = canonicalName(requested)
        if name == Self.baseName { return baseImage() }
        migrateLegacyImage(name)
        guard !name.hasPrefix("."), var info = readInfo(imageDirectory(name)) else {
            let known = (try? list().map(\.name).joined(separator: ", ")) ?? Self.baseName
            throw MSBError(.notFound, "image not found: \(requested)",
                           hint: "available images: \(known); pull one with 'msb pull REFERENCE' or build 'msb image build python'")
        }
        info.name = name
        return info
    }

    private func readInfo(_ directory: String) -> ImageInfo? {
        guard let data = FileDescriptorIO.readFile(directory + "/image.json", limitBytes: 1 << 20) else { return nil }
        return try? JSONDecoder.msb.decode(ImageInfo.self, from: Data(data))
    }

    package func list() throws(MSBError) -> [ImageInfo] {
        var images = [baseImage()]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for entry in names.sorted() where !entry.hasPrefix(".") {
            let name = entry.replacingOccurrences(of: "%2F", with: "/").replacingOccurrences(of: "%25", with: "%")
            if let info = try? get(name) { images.append(info) }
        }
        return images
    }

    /// A fresh work directory for one pull or build (concurrent ones never share one).
    func makeWorkDirectory(_ purpose: String) throws(MSBError) -> String {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var template = Array("\(directory)/.tmp-\(purpose)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let base = buffer.baseAddress, mkdtemp(base) != nil else { return nil }
            return String(cString: base)
        }
        guard let made else { throw MSBError(.stateStore, "cannot create a work directory for the image: \(String(cString: strerror(errno)))") }
        return made
    }

    /// Whether the image with this digest is stored already (a pull of it needs no layers).
    func stored(_ digest: ContentDigest) -> ImageInfo? { readInfo(storedDirectory(digest)) }

    /// Stores `work` (image.json + rootfs.ext4) as the image `digest` unless it is stored
    /// already, then points the tag `name` at it. Stored files are made read-only.
    func install(_ work: String, digest: ContentDigest, name: String) throws(MSBError) {
        let fm = FileManager.default
        try? fm.createDirectory(atPath: storeDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let target = storedDirectory(digest)
        if !fm.fileExists(atPath: target + "/image.json") {
            chmod(work + "/rootfs.ext4", 0o444)
            chmod(work + "/image.json", 0o444)
            chmod(work, 0o755)
            // Another pull of the same content may have won the race: then theirs is kept.
            if rename(work, target) != 0 && !fm.fileExists(atPath: target + "/image.json") {
                throw MSBError(.stateStore, "cannot store image \(name): \(String(cString: strerror(errno)))")
            }
        }
        try point(name, at: digest)
    }

    /// Moves (or creates) a tag with one rename, so it always names a whole image.
    func point(_ name: String, at digest: ContentDigest) throws(MSBError) {
        migrateLegacyImage(name)
        let temporary = directory + "/.tag-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard symlink(".store/" + digest.hex, temporary) == 0 else {
            throw MSBError(.stateStore, "cannot tag image \(name): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, imageDirectory(name)) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw MSBError(.stateStore, "cannot tag image \(name): \(reason)")
        }
    }

    /// Images written before the store existed were directories named by their tag: move
    /// one into the store and leave a tag in its place (paths through the tag still work).
    private func migrateLegacyImage(_ name: String) {
        let path = imageDirectory(name)
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, let legacy = readInfo(path) else { return }
        guard let digest = ContentDigest(legacy.digest) ?? (try? ContentDigest.ofFile(path + "/rootfs.ext4")) else { return }
        try? FileManager.default.createDirectory(atPath: storeDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if rename(path, storedDirectory(digest)) == 0 { try? point(name, at: digest) }
    }

    /// Removes a tag. Its stored image goes too unless another tag or a sandbox uses it
    /// (`usedBy`: the image digests of every sandbox that shares this store); with `force`
    /// the tag goes even while sandboxes use it, and they keep their image.
    package func remove(_ requested: String, usedBy sandboxes: [(name: String, imageDigest: String)], force: Bool) throws(MSBError) {
        let info = try get(requested)
        guard info.kind != "builtin" else {
            throw MSBError(.invalidArgument, "the base image is built in and cannot be removed")
        }
        let users = sandboxes.filter { $0.imageDigest == info.digest }.map(\.name)
        if !users.isEmpty && !force {
            throw MSBError(.invalidState, "image \(info.name) is used by sandboxes: \(users.joined(separator: ", "))",
                           hint: "remove them first, or use 'msb image rm -f \(info.name)' (they keep their copy)")
        }
        guard unlink(imageDirectory(info.name)) == 0 else {
            throw MSBError(.stateStore, "cannot remove image \(info.name): \(String(cString: strerror(errno)))")
        }
        _ = collect(keeping: Set(sandboxes.map(\.imageDigest)))
    }

    /// Removes the blob cache, leftovers of interrupted pulls and builds, and stored images
    /// no tag and no sandbox (`usedBy`, digests) refers to; returns how many entries went.
    package func prune(usedBy: Set<String>) -> Int {
        let fm = FileManager.default
        var removed = 0
        let blobs = directory + "/.blobs/sha256"
        for blob in (try? fm.contentsOfDirectory(atPath: blobs)) ?? [] where (try? fm.removeItem(atPath: blobs + "/" + blob)) != nil {
            removed += 1
        }
        for entry in (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        where [".tmp-", ".tag-", ".build-", ".pull-", ".old-", ".removing-"].contains(where: entry.hasPrefix) {
            if (try? fm.removeItem(atPath: directory + "/" + entry)) != nil { removed += 1 }
        }
        return removed + collect(keeping: usedBy)
    }

    /// Removes stored images that no tag points at and no sandbox uses.
    private func collect(keeping used: Set<String>) -> Int {
        let fm = FileManager.default
        var tagged = used
        for entry in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where !entry.hasPrefix(".") {
            if let target = try? fm.destinationOfSymbolicLink(atPath: directory + "/" + entry), target.hasPrefix(".store/") {
                tagged.insert("sha256:" + target.dropFirst(7))
            }
        }
        var removed = 0
        for hex in (try? fm.contentsOfDirectory(atPath: storeDirectory)) ?? [] where !tagged.contains("sha256:" + hex) {
            let doomed = directory + "/.tmp-removing-\(hex)"
            if rename(storeDirectory + "/" + hex, doomed) == 0, (try? fm.removeItem(atPath: doomed)) != nil { removed += 1 }
        }
        return removed
    }

    func baseImage() -> ImageInfo {
        let initrd = GuestArtifacts(directory: paths.artifacts).initrdPath
        let attributes = try? FileManager.default.attributesOfItem(atPath: initrd)
        return ImageInfo(
            name: Self.baseName, kind: "builtin", digest: "", sizeBytes: (attributes?[.size] as? Int64) ?? 0,
            createdAt: (attributes?[.modificationDate] as? Date) ?? Date(timeIntervalSince1970: 0),
            environment: [], workingDirectory: "", source: "busybox initramfs (scripts/build-guest.sh)")
    }

    /// Writes image.json atomically.
    func save(_ info: ImageInfo, in directory: String) throws(MSBError) {
        do {
            let data = try JSONEncoder.msb.encode(info)
            try data.write(to: URL(fileURLWithPath: directory + "/image.json"), options: .atomic)
        } catch {
            throw MSBError(.stateStore, "cannot write image metadata: \(error)")
        }
    }
}
