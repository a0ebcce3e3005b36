import Foundation

/// What `msb image ls` shows and what a sandbox boots from.
package struct ImageInfo: Codable, Equatable, Sendable {
    /// The sandbox SDKs' image names for the offline images msb builds.
    package static let aliases = ["microsandbox/python": "python", "microsandbox/node": "node"]

    package var name: String
    /// `builtin` (the busybox initramfs, no disk) or `disk` (a read-only ext4 root).
    package var kind: String
    /// sha256 of the root disk, or of the initramfs for the built-in image.
    package var digest: String
    package var sizeBytes: Int64
    package var createdAt: Date
    /// Defaults for exec in sandboxes of this image.
    package var environment: [String]
    package var workingDirectory: String
    /// Where this image came from, e.g. `mmdebstrap bookworm minbase + python3`.
    package var source: String
    /// Entrypoint + Cmd of a pulled image (informational; exec always names its command).
    package var command: [String]?
    /// The image config's User, the default for execs.
    package var user: String?

    package init(name: String, kind: String, digest: String, sizeBytes: Int64, createdAt: Date, environment: [String],
                 workingDirectory: String, source: String, command: [String]? = nil, user: String? = nil) {
        self.name = name
        self.kind = kind
        self.digest = digest
        self.sizeBytes = sizeBytes
        self.createdAt = createdAt
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.source = source
        self.command = command
        self.user = user
    }
}
