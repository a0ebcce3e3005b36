import Foundation
import MSBCore
import MSBOS

/// A streaming reader of tar archives (ustar, GNU long names, pax path/linkpath),
/// enough for OCI image layers. It hands out entries; it never touches the file system.
struct TarReader {
    enum Kind { case file, hardLink, symlink, directory, other }

    struct Entry {
        var path: String
        var kind: Kind
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var size: Int
        var linkTarget: String
        var modified: Int
    }

    /// A blocking descriptor the archive is read from (a decompressor's stdout).
    private let fd: Int32
    private var pending: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    private mutating func read(_ count: Int) throws(MSBError) -> [UInt8] {
        while pending.count < count {
            let chunk: [UInt8]?
            do { chunk = try FileDescriptorIO.readSome(fd, maxBytes: max(65536, count - pending.count)) } catch {
                throw MSBError(.internalError, "cannot read the layer archive: \(error.reason)")
            }
            guard let chunk, !chunk.isEmpty else { throw MSBError(.invalidArgument, "layer archive is truncated") }
            pending += chunk
        }
        let out = Array(pending[0..<count])
        pending.removeFirst(count)
        return out
    }

    private mutating func skipPadding(_ size: Int) throws(MSBError) {
        let pad = (512 - size % 512) % 512
        if pad > 0 { _ = try read(pad) }
    }

    /// Reads the next entry's header; `body` must then be called (or `skip`) before the next.
    mutating func next() throws(MSBError) -> Entry? {
        var longName: String?
        var longLink: String?
        var pax: [String: String] = [:]
        while true {
            let header = try read(512)
            if header.allSatisfy({ $0 == 0 }) { return nil }
            guard checksumValid(header) else { throw MSBError(.invalidArgument, "layer archive has a corrupt tar header") }
            let type = header[156]
            let size = Int(octal(header[124..<136]))
            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                let data = try read(size)
                try skipPadding(size)
                let text = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
                if type == UInt8(ascii: "L") { longName = text } else { longLink = text }
                continue
            case UInt8(ascii: "x"):
                let data = try read(size)
                try skipPadding(size)
                pax.merge(parsePax(data)) { $1 }
                continue
            case UInt8(ascii: "g"):
                _ = try read(size)
                try skipPadding(size)
                continue
            default:
                break
            }
            var name = string(header[0..<100])
            let prefix = string(header[345..<500])
            if !prefix.isEmpty && header[257..<262].elementsEqual("ustar".utf8) { name = prefix + "/" + name }
            let kind: Kind
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .file
            case UInt8(ascii: "1"): kind = .hardLink
            case UInt8(ascii: "2"): kind = .symlink
            case UInt8(ascii: "5"): kind = .directory
            default: kind = .other
            }
            return Entry(
                path: pax["path"] ?? longName ?? name,
                kind: kind,
                mode: UInt32(octal(header[100..<108]) & 0o7777),
                uid: UInt32(pax["uid"].flatMap { UInt32($0) } ?? UInt32(octal(header[108..<116]))),
                gid: UInt32(pax["gid"].flatMap { UInt32($0) } ?? UInt32(octal(header[116..<124]))),
                size: pax["size"].flatMap { Int($0) } ?? size,
                linkTarget: pax["linkpath"] ?? longLink ?? string(header[157..<257]),
                modified: Int(octal(header[136..<148])))
        }
    }

    /// The entry's data, in chunks.
    mutating func body(of entry: Entry, _ sink: ([UInt8]) throws(MSBError) -> Void) throws(MSBError) {
        var left = entry.kind == .file ? entry.size : (entry.kind == .other ? entry.size : 0)
        let total = left
        while left > 0 {
            let chunk = try read(min(left, 1 << 20))
            if entry.kind == .file { try sink(chunk) }
            left -= chunk.count
        }
        try skipPadding(total)
    }

    private func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private func octal(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        // Base-256 for large values (GNU): top bit set.
        if let first = bytes.first, first & 0x80 != 0 {
            return bytes.dropFirst().reduce(UInt64(first & 0x7f)) { $0 << 8 | UInt64($1) }
        }
        var value: UInt64 = 0
        for byte in bytes where byte >= 48 && byte <= 55 { value = value * 8 + UInt64(byte - 48) }
        return value
    }

    private func checksumValid(_ header: [UInt8]) -> Bool {
        let stored = octal(header[148..<156])
        var sum: UInt64 = 0
        for (i, byte) in header.enumerated() { sum += (i >= 148 && i < 156) ? 32 : UInt64(byte) }
        return sum == stored
    }

    private func parsePax(_ data: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        var rest = data[...]
        while let space = rest.firstIndex(of: 32), let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
              length > 0, rest.count >= length {
            let record = rest[(space + 1)..<(rest.startIndex + length - 1)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                result[String(decoding: record[record.startIndex..<eq], as: UTF8.self)] =
                    String(decoding: record[(eq + 1)...], as: UTF8.self)
            }
            rest = rest[(rest.startIndex + length)...]
        }
        return result
    }
}
