import CArchive
import Glibc
import MSBCore

/// Reads tar archives (ustar, pax, GNU) through libarchive, optionally gzip- or
/// zstd-compressed, entry by entry, within `ArchiveLimits`. It never touches the file
/// system: callers decide what an entry may do (`LayerExtractor`, `CopyExtractor`).
/// Decompression happens in process (zlib, libzstd); no child process is started.
package final class ArchiveReader {
    package enum Compression: Sendable {
        /// A plain tar stream (what a sandbox's `tar -c` sends).
        case none
        /// gzip, zstd or none, told apart by their magic bytes (OCI layers).
        case detect
    }

    private let archive: OpaquePointer
    private let limits: ArchiveLimits
    /// What the messages call the archive ("layer 2", "the archive").
    private let label: String
    /// Kept alive while libarchive reads it (`init(bytes:)`).
    private var memory: UnsafeMutableRawBufferPointer?
    package private(set) var entryCount = 0
    private var ownedFd: Int32 = -1

    /// Reads from `fd` (a file or a pipe), closed with the reader when `closing` is set.
    package convenience init(fd: Int32, compression: Compression, limits: ArchiveLimits, label: String = "the archive",
                             closing: Bool = false) throws(MSBError) {
        do {
            try self.init(compression: compression, limits: limits, label: label) { archive throws(MSBError) in
                archive_read_open_fd(archive, fd, 65536)
            }
        } catch {
            if closing { close(fd) }
            throw error
        }
        if closing { ownedFd = fd }
    }

    /// Reads from bytes in memory (tests, the fuzzing entry point).
    package convenience init(bytes: [UInt8], compression: Compression, limits: ArchiveLimits, label: String = "the archive") throws(MSBError) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { source in copy.copyMemory(from: source) }
        do {
            try self.init(compression: compression, limits: limits, label: label) { archive throws(MSBError) in
                archive_read_open_memory(archive, copy.baseAddress, bytes.count)
            }
        } catch {
            copy.deallocate()
            throw error
        }
        memory = copy
    }

    private init(compression: Compression, limits: ArchiveLimits, label: String,
                 open: (OpaquePointer) throws(MSBError) -> Int32) throws(MSBError) {
        // Set up on a local first: `deinit` frees only a reader that was fully made.
        guard let archive = archive_read_new() else { throw MSBError(.internalError, "cannot allocate an archive reader") }
        // Only tar: no zip, iso or rar parsers are reachable from hostile input.
        archive_read_support_format_tar(archive)
        archive_read_support_format_empty(archive)
        if compression == .detect {
            // ARCHIVE_WARN would mean an external program does the work; refuse that.
            guard archive_read_support_filter_gzip(archive) == ARCHIVE_OK,
                  archive_read_support_filter_zstd(archive) == ARCHIVE_OK else {
                archive_read_free(archive)
                throw MSBError(.unsupported, "this libarchive cannot decompress gzip and zstd by itself")
            }
        }
        let status: Int32
        do { status = try open(archive) } catch {
            archive_read_free(archive)
            throw error
        }
        guard status == ARCHIVE_OK else {
            let why = Self.errorText(archive)
            archive_read_free(archive)
            throw MSBError(.invalidArgument, "\(label) cannot be read: \(why)")
        }
        self.archive = archive
        self.limits = limits
        self.label = label
    }

    deinit {
        archive_read_free(archive)
        memory?.deallocate()
        if ownedFd >= 0 { close(ownedFd) }
    }

    private static func errorText(_ archive: OpaquePointer) -> String {
        guard let text = archive_error_string(archive) else { return "unknown error" }
        return ArchivePath.printable(String(cString: text))
    }

    private func malformed() -> MSBError {
        MSBError(.invalidArgument, "\(label) is malformed: \(Self.errorText(archive))")
    }

    private func tooLarge() -> MSBError {
        MSBError(.limitExceeded, "\(label) expands to more than \(Self.bytesText(limits.maxTotalBytes))"
                 + (limits.usedBytes > 0 ? " (with the archives before it)" : ""))
    }

    /// Uncompressed bytes consumed so far.
    package var consumedBytes: Int64 { archive_filter_bytes(archive, 0) }

    /// The next entry, or nil at the end. Data an entry's caller did not read is skipped.
    package func next() throws(MSBError) -> ArchiveEntry? {
        var raw: OpaquePointer?
        let status = archive_read_next_header(archive, &raw)
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let raw else { throw malformed() }
        entryCount += 1
        guard entryCount <= limits.maxEntries else {
            throw MSBError(.limitExceeded, "\(label) has more than \(limits.maxEntries) entries")
        }
        let path = Self.text(archive_entry_pathname_utf8(raw) ?? archive_entry_pathname(raw))
        let kind = Self.kind(archive_entry_filetype(raw), hardLink: archive_entry_hardlink(raw) != nil)
        let link = kind == .hardLink ? Self.text(archive_entry_hardlink_utf8(raw) ?? archive_entry_hardlink(raw))
            : kind == .symlink ? Self.text(archive_entry_symlink_utf8(raw) ?? archive_entry_symlink(raw)) : ""
        guard path.utf8.count <= limits.maxNameBytes, link.utf8.count <= limits.maxNameBytes else {
            throw MSBError(.limitExceeded, "\(label) has a name longer than \(limits.maxNameBytes) bytes")
        }
        let declared = archive_entry_size_is_set(raw) != 0 ? archive_entry_size(raw) : 0
        guard declared >= 0 else { throw MSBError(.invalidArgument, "\(label) declares a negative size for '\(ArchivePath.printable(path))'") }
        // What is left of the budget must hold this entry's data before any of it is read.
        let (total, overflow) = consumedBytes.addingReportingOverflow(declared)
        guard !overflow, total <= limits.maxTotalBytes - limits.usedBytes else { throw tooLarge() }
        return ArchiveEntry(
            path: path, kind: kind,
            mode: UInt32(truncatingIfNeeded: archive_entry_perm(raw)) & 0o7777,
            uid: UInt32(exactly: archive_entry_uid(raw)) ?? UInt32.max,
            gid: UInt32(exactly: archive_entry_gid(raw)) ?? UInt32.max,
            sizeBytes: kind == .file ? declared : 0,
            linkTarget: link,
            modifiedSeconds: Int64(truncatingIfNeeded: archive_entry_mtime(raw)))
    }

    /// The current entry's data in chunks of at most 64 KiB.
    package func readData(_ sink: (UnsafeRawBufferPointer) throws(MSBError) -> Void) throws(MSBError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = archive_read_data(archive, buffer.baseAddress, buffer.count)
            if count == 0 { return }
            guard count > 0 else { throw malformed() }
            guard consumedBytes <= limits.maxTotalBytes - limits.usedBytes else { throw tooLarge() }
            try sink(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    /// Skips the current entry's data.
    package func skipData() throws(MSBError) {
        guard archive_read_data_skip(archive) == ARCHIVE_OK else { throw malformed() }
    }

    private static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer)  // invalid UTF-8 is repaired (U+FFFD), never trusted
    }

    private static func kind(_ type: mode_t, hardLink: Bool) -> ArchiveEntry.Kind {
        if hardLink { return .hardLink }
        switch type & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        case S_IFCHR: return .characterDevice
        case S_IFBLK: return .blockDevice
        case S_IFIFO: return .fifo
        case S_IFSOCK: return .socket
        default: return .unknown
        }
    }

    package static func bytesText(_ bytes: Int64) -> String {
        if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        return "\(bytes) bytes"
    }
}
