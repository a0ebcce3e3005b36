import Foundation
import MSBCore

/// Everything a template's saved guest depends on. A template is used only when its
/// recorded inputs equal the current ones, field by field; any change (a rebuilt
/// initramfs, an upgraded QEMU, another memory size) means a new template.
///
/// The image itself is not an input: before its `setup` the guest has only probed the root
/// disk's size and first sectors (dropped again before the mount), so every image whose
/// disk has the same size shares one template, and its memory pages.
package struct TemplateInputs: Codable, Equatable, Sendable {
    /// Bump when QEMU's device arguments or the guest's start sequence change in a way the
    /// file identities below do not show.
    package static let currentLayout = 5

    package var layout: Int
    package var accelerator: String
    package var cpus: Int
    package var memoryMiB: Int
    /// The root disk's size in bytes, or nil for the initramfs root.
    package var rootDiskBytes: Int64?
    package var kernel: FileIdentity
    package var initramfs: FileIdentity
    package var qemu: FileIdentity
    /// Whether the guest has a network card (a sandbox with `--no-net` has none at all).
    package var network: Bool

    package init(accelerator: Accelerator, cpus: Int, memoryMiB: Int, rootDiskBytes: Int64?,
                 kernel: FileIdentity, initramfs: FileIdentity, qemu: FileIdentity, network: Bool) {
        self.layout = Self.currentLayout
        self.accelerator = accelerator.rawValue
        self.cpus = cpus
        self.memoryMiB = memoryMiB
        self.rootDiskBytes = rootDiskBytes
        self.kernel = kernel
        self.initramfs = initramfs
        self.qemu = qemu
        self.network = network
    }

    /// The template's directory name: 16 hex digits of FNV-1a over the canonical JSON. Not
    /// a security boundary (the full inputs are compared on use); it only spreads names.
    package var key: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return StableHash.hex16(StableHash.fnv1a64((try? encoder.encode(self)).map(Array.init) ?? []))
    }
}

/// A file as the kernel knows it: replaced or rewritten, it no longer matches.
package struct FileIdentity: Codable, Equatable, Sendable {
    package var path: String
    package var device: UInt64
    package var inode: UInt64
    package var sizeBytes: Int64
    package var modifiedNanoseconds: Int64

    package init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.path = path
        device = UInt64(truncatingIfNeeded: info.st_dev)
        inode = UInt64(truncatingIfNeeded: info.st_ino)
        sizeBytes = Int64(truncatingIfNeeded: info.st_size)
        modifiedNanoseconds = Int64(truncatingIfNeeded: info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(truncatingIfNeeded: info.st_mtim.tv_nsec)
    }
}
