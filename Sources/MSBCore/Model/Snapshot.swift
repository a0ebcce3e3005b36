import Foundation

/// A named snapshot of a running sandbox (`msb snapshot create`): its memory, device
/// state and disk as they were, which any number of sandboxes start from (`create --from`).
/// Belongs to one namespace, like sandboxes.
public struct SnapshotInfo: Codable, Equatable, Sendable {
    public var name: String
    /// The server namespace it belongs to; `default` on a local host.
    public var namespace = "default"
    /// The sandbox it was taken from (which may since have been removed).
    public var source: String
    /// The image (and its content digest) under the sandbox's disk.
    public var image: String
    public var imageDigest: String?
    public var cpus: Int
    public var memoryMiB: Int
    public var createdAt: Date
    /// Host disk space it takes: the saved memory (allocated blocks), device state and disk layer.
    public var sizeBytes: Int64

    package init(name: String, namespace: String = "default", source: String, image: String, imageDigest: String?,
                 cpus: Int, memoryMiB: Int, createdAt: Date, sizeBytes: Int64) {
        self.name = name
        self.namespace = namespace
        self.source = source
        self.image = image
        self.imageDigest = imageDigest
        self.cpus = cpus
        self.memoryMiB = memoryMiB
        self.createdAt = createdAt
        self.sizeBytes = sizeBytes
    }
}

extension SandboxConfig {
    /// A sandbox made from `snapshot` (`create --from`) takes its image, memory and cpus:
    /// the saved memory holds a kernel and processes sized for them.
    package mutating func adopt(_ snapshot: SnapshotInfo) {
        self.snapshot = snapshot.name
        image = snapshot.image
        imageDigest = snapshot.imageDigest
        cpus = snapshot.cpus
        memoryMiB = snapshot.memoryMiB
    }
}
