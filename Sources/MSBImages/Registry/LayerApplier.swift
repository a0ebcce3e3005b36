import Glibc
import MSBArchive
import MSBCore

/// Applies OCI layers, in order, to a root directory through libarchive (`MSBArchive`):
/// gzip, zstd or plain tar, read in process. The rules (whiteouts, owners, links, what is
/// refused and skipped, limits) are `LayerExtractor`'s; docs/ARCHIVES.md lists them.
struct LayerApplier {
    let root: String
    let limits: ArchiveLimits
    private var extractor: LayerExtractor?
    private var applied = 0

    init(root: String, limits: ArchiveLimits = .layers) {
        self.root = root
        self.limits = limits
    }

    /// Device nodes and other special files left out so far.
    var skippedEntries: Int { extractor?.skippedEntries ?? 0 }

    /// `mediaType` is kept for the callers; the compression is told by its magic bytes.
    mutating func apply(layer path: String, mediaType: String) throws(MSBError) {
        applied += 1
        var extractor: LayerExtractor
        if let made = self.extractor { extractor = made } else { extractor = try LayerExtractor(root: root, limits: limits) }
        defer { self.extractor = extractor }
        let label = "layer \(applied)"
        try extractor.apply(label: label) { (limits: ArchiveLimits) throws(MSBError) in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw MSBError(.internalError, "cannot open \(label): \(String(cString: strerror(errno)))") }
            // The reader does not own the descriptor; it lives as long as the reader is used.
            return try ArchiveReader(fd: fd, compression: .detect, limits: limits, label: label, closing: true)
        }
    }
}
