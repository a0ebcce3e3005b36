import Glibc
import MSBCore

/// One entry of an archive as the reader hands it out: typed fields, never raw header bytes.
package struct ArchiveEntry: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        case file, directory, symlink, hardLink, characterDevice, blockDevice, fifo, socket, unknown
    }

    /// As stored (lossy UTF-8); check it with `ArchivePath.components` before any use.
    package var path: String
    package var kind: Kind
    /// Permission bits with setuid, setgid and sticky (`& 0o7777`).
    package var mode: UInt32
    package var uid: UInt32
    package var gid: UInt32
    /// Declared data size (0 for anything but files).
    package var sizeBytes: Int64
    /// A symlink's target or a hard link's source path.
    package var linkTarget: String
    package var modifiedSeconds: Int64

    package init(path: String, kind: Kind, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0,
                 sizeBytes: Int64 = 0, linkTarget: String = "", modifiedSeconds: Int64 = 0) {
        self.path = path
        self.kind = kind
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.sizeBytes = sizeBytes
        self.linkTarget = linkTarget
        self.modifiedSeconds = modifiedSeconds
    }
}

/// What a reader accepts before it gives up. Everything an archive declares is checked
/// against these before memory or disk is spent on it.
package struct ArchiveLimits: Sendable, Equatable {
    /// Entries in one archive (headers of any kind).
    package var maxEntries: Int
    /// Uncompressed archive bytes (headers, padding and data; skipped data counts too), so a
    /// gzip or zstd bomb stops here however it is shaped.
    package var maxTotalBytes: Int64
    /// A path or link target. libarchive itself refuses pax and GNU long-name headers over 1 MiB.
    package var maxNameBytes: Int
    /// Bytes already spent from `maxTotalBytes` by earlier archives sharing the limit (the
    /// layers below this one).
    package var usedBytes: Int64 = 0

    package init(maxEntries: Int, maxTotalBytes: Int64, maxNameBytes: Int = 4096) {
        self.maxEntries = maxEntries
        self.maxTotalBytes = maxTotalBytes
        self.maxNameBytes = maxNameBytes
    }

    /// Image layers: generous for real images (python:3.12 is ~1 GiB in ~40,000 entries);
    /// the byte limit covers all layers of one image together.
    package static let layers = ArchiveLimits(maxEntries: 1_000_000, maxTotalBytes: 32 << 30)
    /// `msb cp` from a sandbox: the user asked for the copy, so its size is theirs to judge
    /// (Ctrl-C ends it); the entry count still bounds the bookkeeping.
    package static let copies = ArchiveLimits(maxEntries: 10_000_000, maxTotalBytes: .max)
}

package enum ArchivePath {
    /// A name from an archive made safe to print: control characters (and bidi overrides)
    /// escaped the way the CLI escapes messages (`\x1b`), long names shortened.
    package static func printable(_ name: String) -> String {
        PrintableText.escaped(name, maxScalars: 200)
    }

    package enum Problem: Error, Equatable {
        case empty, absolute, climbs, tooLong
    }

    /// The components of an archive path: `.` and empty components dropped; absolute names
    /// and `..` refused (a reader never walks up, and never starts at the host's `/`).
    package static func components(_ path: String, maxBytes: Int = 4096) -> Result<[String], Problem> {
        if path.utf8.count > maxBytes { return .failure(.tooLong) }
        if path.hasPrefix("/") { return .failure(.absolute) }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        if parts.contains("..") { return .failure(.climbs) }
        if parts.isEmpty || parts.contains(where: { $0.utf8.contains(0) }) { return .failure(.empty) }
        return .success(parts)
    }

    /// A single name for a directory entry: not empty, `.` or `..`, and without a slash.
    package static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.utf8.contains(0)
    }
}
