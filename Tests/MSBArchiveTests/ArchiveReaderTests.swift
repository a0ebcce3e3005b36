import Foundation
import Glibc
import MSBCore
import Testing
@testable import MSBArchive

/// The reader against hostile and malformed streams: every one ends in an MSBError (or a
/// clean read), never a trap, and never costs memory or time beyond the limits.
@Suite struct ArchiveReaderTests {
    static let small = ArchiveLimits(maxEntries: 100, maxTotalBytes: 1 << 20)

    static func readAll(_ bytes: [UInt8], compression: ArchiveReader.Compression = .detect,
                        limits: ArchiveLimits = small) throws(MSBError) -> [ArchiveEntry] {
        let reader = try ArchiveReader(bytes: bytes, compression: compression, limits: limits)
        var entries: [ArchiveEntry] = []
        while let entry = try reader.next() {
            try reader.readData { _ in }
            entries.append(entry)
        }
        return entries
    }

    /// Writes an archive with libarchive into memory (through a temporary file).
    static func written(_ compression: ArchiveWriter.Compression = .none, _ body: (ArchiveWriter) throws -> Void) throws -> [UInt8] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("msb-archive-\(UUID().uuidString)").path
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        let writer = try ArchiveWriter(fd: fd, compression: compression)
        try body(writer)
        try writer.finish()
        return Array(FileManager.default.contents(atPath: path) ?? Data())
    }

    @Test func readsWhatTheWriterWrites() throws {
        for compression in [ArchiveWriter.Compression.none, .gzip, .zstd] {
            let bytes = try Self.written(compression) { writer in
                try writer.add(ArchiveEntry(path: "a", kind: .directory, mode: 0o751))
                try writer.add(ArchiveEntry(path: "a/f", kind: .file, mode: 0o640, uid: 7, gid: 8, sizeBytes: 5))
                try writer.writeData(Array("hello".utf8))
                try writer.add(ArchiveEntry(path: "a/l", kind: .symlink, linkTarget: "f"))
                try writer.add(ArchiveEntry(path: "a/h", kind: .hardLink, linkTarget: "a/f"))
                try writer.add(ArchiveEntry(path: "a/" + String(repeating: "n", count: 300), kind: .file))
            }
            let entries = try Self.readAll(bytes)
            #expect(entries.map(\.path) == ["a/", "a/f", "a/l", "a/h", "a/" + String(repeating: "n", count: 300)], "\(compression)")
            #expect(entries.map(\.kind) == [.directory, .file, .symlink, .hardLink, .file])
            #expect(entries[0].mode == 0o751 && entries[1].uid == 7 && entries[1].gid == 8 && entries[1].sizeBytes == 5)
            #expect(entries[2].linkTarget == "f" && entries[3].linkTarget == "a/f")
        }
    }

    /// The hand-written reader trapped here (`length - 1` before the record's end).
    @Test func paxRecordTwoSpaceNewlineIsNoTrap() {
        var tar = TarBytes()
        tar.pax(Array("2 \n".utf8))
        tar.file("a")
        let outcome = Result { () throws(MSBError) in try Self.readAll(tar.finished) }
        if case .success(let entries) = outcome { #expect(entries.map(\.path) == ["a"]) }
    }

    /// The hand-written reader trapped on base-256 numbers (`0x80 ff …` shifted out of range).
    @Test func baseTwoFiftySixSizeIsRefused() {
        for field in [[0x80] + [UInt8](repeating: 0xff, count: 11), [0xff] + [UInt8](repeating: 0xff, count: 11),
                      [0x80, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff]] {
            var tar = TarBytes()
            tar.header("big", sizeField: field)
            tar.data([1, 2, 3])
            #expect(throws: MSBError.self) { try Self.readAll(tar.finished) }
        }
    }

    @Test func hugeDeclaredPaxHeaderIsRefusedWithoutReadingIt() {
        var tar = TarBytes()
        tar.header("PaxHeaders/x", type: "x", size: 0o77777777777)  // 8 GiB declared, nothing follows
        tar.data(Array(TarBytes.paxRecord("path", "x").prefix(10)))
        let started = Date()
        #expect(throws: MSBError.self) { try Self.readAll(tar.finished, limits: ArchiveLimits(maxEntries: 10, maxTotalBytes: .max)) }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func longPathsOverTheLimitAreRefused() {
        var tar = TarBytes()
        tar.pax(TarBytes.paxRecord("path", String(repeating: "a/", count: 3000)))
        tar.file("ignored")
        #expect(throws: MSBError.self) { try Self.readAll(tar.finished) }
    }

    @Test func gzipAndZstdBombsStopAtTheByteLimit() throws {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        for compression in [ArchiveWriter.Compression.gzip, .zstd] {
            let bomb = try Self.written(compression) { writer in
                try writer.add(ArchiveEntry(path: "zeros", kind: .file, sizeBytes: 64 << 20))
                for _ in 0..<64 { try writer.writeData(zeros) }
            }
            #expect(bomb.count < 1 << 20, "a \(bomb.count)-byte bomb")
            do {
                _ = try Self.readAll(bomb)
                Issue.record("a \(compression) bomb was read whole")
            } catch {
                #expect(error.code == .limitExceeded)
                #expect(error.message == "the archive expands to more than 1 MiB")
            }
        }
    }

    @Test func manyEntriesStopAtTheEntryLimit() {
        var tar = TarBytes()
        for index in 0..<101 { tar.directory("d\(index)") }
        #expect(throws: MSBError.self) { try Self.readAll(tar.finished) }
    }

    @Test func garbageAndTruncationAreErrors() {
        var tar = TarBytes()
        tar.file("a", String(repeating: "x", count: 2000))
        let whole = tar.finished
        for cut in [10, 511, 600, 1500] {
            #expect(throws: MSBError.self) { try Self.readAll(Array(whole.prefix(cut))) }
        }
        #expect(throws: MSBError.self) { try Self.readAll((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }) }
        var corrupt = whole
        corrupt[150] ^= 0x01  // the header checksum
        #expect(throws: MSBError.self) { try Self.readAll(corrupt) }
        #expect((try? Self.readAll([])) != nil, "an empty layer is an empty archive")
    }

    @Test func printableEscapesControlCharacters() {
        #expect(ArchivePath.printable("a\u{1b}[31mb\n\u{202e}") == "a\\x1b[31mb\\x0a\\u{202e}")
        #expect(ArchivePath.printable(String(repeating: "n", count: 500)) == String(repeating: "n", count: 200) + "…")
    }

    @Test func pathsAreCheckedComponentByComponent() throws {
        #expect(try ArchivePath.components("./usr//bin/env").get() == ["usr", "bin", "env"])
        #expect(ArchivePath.components("/etc/passwd") == .failure(.absolute))
        #expect(ArchivePath.components("../evil") == .failure(.climbs))
        #expect(ArchivePath.components("a/../../b") == .failure(.climbs))
        #expect(ArchivePath.components("./") == .failure(.empty))
        for bad in ["", ".", "..", "a/b"] { #expect(!ArchivePath.isPlainName(bad)) }
        #expect(ArchivePath.isPlainName("..."))
    }
}
