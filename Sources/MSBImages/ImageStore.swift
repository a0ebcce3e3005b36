import Foundation
import MSBCore
import MSBOS


/// Images under `$MSB_IMAGES/NAME/` (default `$MSB_HOME/images`) (image.json + rootfs.ext4). The base image is
/// the guest initramfs itself and always exists.
package struct ImageStore: Sendable {
    package let paths: MSBPaths
    package static let baseName = "base"

    package init(paths: MSBPaths) { self.paths = paths }

    package var directory: String { paths.images }
    /// Reference characters that cannot be in a file name are percent-encoded.
    package func imageDirectory(_ name: String) -> String {
        directory + "/" + name.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
    }
    package func rootDisk(_ name: String) -> String { imageDirectory(name) + "/rootfs.ext4" }

    package func canonicalName(_ name: String) -> String {
        if FileManager.default.fileExists(atPath: imageDirectory(name) + "/image.json") { return name }
        return ImageInfo.aliases[name] ?? name
    }

    package func get(_ requested: String) throws(MSBError) -> ImageInfo {
        let name = canonicalName(requested)
        if name == Self.baseName { return baseImage() }
        guard !name.hasPrefix("."),
              let data = FileManager.default.contents(atPath: imageDirectory(name) + "/image.json"),
              let info = try? JSONDecoder.msb.decode(ImageInfo.self, from: data) else {
            let known = (try? list().map(\.name).joined(separator: ", ")) ?? Self.baseName
            throw MSBError(.notFound, "image not found: \(requested)",
                           hint: "available images: \(known); build one with 'msb image build python' or 'msb image build node'")
        }
        return info
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

    /// `usedBy` lists (sandbox, image) pairs: a sandbox's disk is an overlay of its image,
    /// so removing an image in use would strand it, unless `force`.
    package func remove(_ requested: String, usedBy sandboxes: [(name: String, image: String)], force: Bool) throws(MSBError) {
        let info = try get(requested)
        guard info.kind != "builtin" else {
            throw MSBError(.invalidArgument, "the base image is built in and cannot be removed")
        }
        let users = sandboxes.filter { $0.image == info.name }.map(\.name)
        if !users.isEmpty && !force {
            throw MSBError(.invalidState, "image \(info.name) is used by sandboxes: \(users.joined(separator: ", "))",
                           hint: "remove them first, or use 'msb image rm -f \(info.name)'")
        }
        do {
            // Rename first so a half-removed image is never mistaken for a whole one.
            let doomed = directory + "/.removing-\(info.name)-\(getpid())"
            try FileManager.default.moveItem(atPath: imageDirectory(info.name), toPath: doomed)
            try FileManager.default.removeItem(atPath: doomed)
        } catch {
            throw MSBError(.stateStore, "cannot remove image \(info.name): \(error)")
        }
    }

    /// Removes the pull blob cache and leftovers of interrupted builds; returns how many entries went.
    package func prune() -> Int {
        let fm = FileManager.default
        var removed = 0
        let blobs = directory + "/.blobs/sha256"
        for blob in (try? fm.contentsOfDirectory(atPath: blobs)) ?? [] where (try? fm.removeItem(atPath: blobs + "/" + blob)) != nil {
            removed += 1
        }
        for entry in (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        where entry.hasPrefix(".build-") || entry.hasPrefix(".pull-") || entry.hasPrefix(".old-") || entry.hasPrefix(".removing-") {
            if (try? fm.removeItem(atPath: directory + "/" + entry)) != nil { removed += 1 }
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
