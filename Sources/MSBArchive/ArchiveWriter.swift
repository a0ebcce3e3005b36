import CArchive
import Glibc
import MSBCore

/// Writes tar archives (GNU format, which every tar reads, busybox's included) through
/// libarchive, optionally gzip- or zstd-compressed.
package final class ArchiveWriter {
    package enum Compression: Sendable { case none, gzip, zstd }

    private let archive: OpaquePointer
    /// The reader of the output went away (EPIPE): what failed after it is no news.
    package private(set) var readerGone = false

    /// Writes to `fd` (left open for the caller to close).
    package init(fd: Int32, compression: Compression = .none) throws(MSBError) {
        guard let archive = archive_write_new() else { throw MSBError(.internalError, "cannot allocate an archive writer") }
        archive_write_set_format_gnutar(archive)
        switch compression {
        case .none: archive_write_add_filter_none(archive)
        case .gzip: archive_write_add_filter_gzip(archive)
        case .zstd: archive_write_add_filter_zstd(archive)
        }
        // Blocks of 10 KiB padding are for tapes; a pipe wants the bytes as they come.
        archive_write_set_bytes_in_last_block(archive, 1)
        guard archive_write_open_fd(archive, fd) == ARCHIVE_OK else {
            let why = archive_error_string(archive).map { String(cString: $0) } ?? "unknown error"
            archive_write_free(archive)
            throw MSBError(.internalError, "cannot write an archive: \(why)")
        }
        self.archive = archive
    }

    deinit {
        archive_write_free(archive)  // closes first if `finish` was not called
    }

    private var errorText: String {
        if archive_errno(archive) == EPIPE { readerGone = true }
        return archive_error_string(archive).map { String(cString: $0) } ?? "unknown error"
    }

    /// Writes one entry's header; a file's data follows through `writeData`.
    package func add(_ entry: ArchiveEntry) throws(MSBError) {
        guard let raw = archive_entry_new() else { throw MSBError(.internalError, "cannot allocate an archive entry") }
        defer { archive_entry_free(raw) }
        archive_entry_set_pathname_utf8(raw, entry.path)
        let type: mode_t
        switch entry.kind {
        case .file, .hardLink, .unknown: type = S_IFREG
        case .directory: type = S_IFDIR
        case .symlink: type = S_IFLNK
        case .characterDevice: type = S_IFCHR
        case .blockDevice: type = S_IFBLK
        case .fifo: type = S_IFIFO
        case .socket: type = S_IFSOCK
        }
        archive_entry_set_filetype(raw, UInt32(truncatingIfNeeded: type))
        archive_entry_set_perm(raw, mode_t(entry.mode & 0o7777))
        archive_entry_set_uid(raw, Int64(truncatingIfNeeded: entry.uid))
        archive_entry_set_gid(raw, Int64(truncatingIfNeeded: entry.gid))
        archive_entry_set_mtime(raw, time_t(truncatingIfNeeded: entry.modifiedSeconds), 0)
        if entry.kind == .symlink { archive_entry_set_symlink_utf8(raw, entry.linkTarget) }
        if entry.kind == .hardLink { archive_entry_set_hardlink_utf8(raw, entry.linkTarget) }
        archive_entry_set_size(raw, entry.kind == .file ? entry.sizeBytes : 0)
        guard archive_write_header(archive, raw) == ARCHIVE_OK else {
            throw MSBError(.internalError, "cannot write '\(ArchivePath.printable(entry.path))' to the archive: \(errorText)")
        }
    }

    package func writeData(_ bytes: UnsafeRawBufferPointer) throws(MSBError) {
        guard bytes.count > 0 else { return }
        guard archive_write_data(archive, bytes.baseAddress, bytes.count) >= 0 else {
            throw MSBError(.internalError, "cannot write the archive: \(errorText)")
        }
    }

    package func writeData(_ bytes: [UInt8]) throws(MSBError) {
        guard !bytes.isEmpty else { return }
        let written = bytes.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
        guard written >= 0 else { throw MSBError(.internalError, "cannot write the archive: \(errorText)") }
    }

    /// Writes the end-of-archive blocks and flushes the compressor.
    package func finish() throws(MSBError) {
        guard archive_write_close(archive) == ARCHIVE_OK else {
            throw MSBError(.internalError, "cannot finish the archive: \(errorText)")
        }
    }
}
