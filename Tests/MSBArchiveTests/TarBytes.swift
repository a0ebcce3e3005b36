import Foundation

/// Tar archives byte by byte, for archives no well-behaved writer would make: every field
/// can be set to anything (names with `..`, base-256 sizes, broken pax records).
struct TarBytes {
    private(set) var bytes: [UInt8] = []

    /// A 512-byte ustar header; `sizeField` replaces the octal size field when given.
    mutating func header(_ name: String, type: Character = "0", size: Int = 0, mode: Int = 0o644, link: String = "",
                         sizeField: [UInt8]? = nil, uid: Int = 0, gid: Int = 0) {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ offset: Int, _ length: Int) {
            for (index, byte) in text.utf8.prefix(length).enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int, _ offset: Int, _ length: Int) {
            put(String(String(value, radix: 8).suffix(length - 1)).leftPadded(to: length - 1), offset, length - 1)
        }
        put(name, 0, 100)
        octal(mode, 100, 8)
        octal(uid, 108, 8)
        octal(gid, 116, 8)
        if let sizeField {
            for (index, byte) in sizeField.prefix(12).enumerated() { block[124 + index] = byte }
        } else {
            octal(size, 124, 12)
        }
        octal(1_700_000_000, 136, 12)
        block[156] = type.asciiValue ?? 0x30
        put(link, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        for index in 148..<156 { block[index] = 32 }
        let sum = block.reduce(0) { $0 + Int($1) }
        put(String(String(sum, radix: 8)).leftPadded(to: 6), 148, 6)
        block[154] = 0
        block[155] = 32
        bytes += block
    }

    mutating func data(_ content: [UInt8]) {
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }

    mutating func file(_ name: String, _ content: String = "x\n", mode: Int = 0o644) {
        header(name, size: content.utf8.count, mode: mode)
        data(Array(content.utf8))
    }

    mutating func directory(_ name: String, mode: Int = 0o755) { header(name, type: "5", mode: mode) }
    mutating func symlink(_ name: String, to target: String) { header(name, type: "2", mode: 0o777, link: target) }
    mutating func hardLink(_ name: String, to target: String) { header(name, type: "1", link: target) }
    mutating func characterDevice(_ name: String) { header(name, type: "3", mode: 0o666) }
    mutating func fifo(_ name: String) { header(name, type: "6", mode: 0o644) }

    /// A pax extended header whose body is `records` exactly as given.
    mutating func pax(_ records: [UInt8]) {
        header("PaxHeaders/x", type: "x", size: records.count)
        data(records)
    }

    /// A pax record with a correct length prefix.
    static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).utf8.count + body.utf8.count != length { length += 1 }
        return Array("\(length)\(body)".utf8)
    }

    mutating func end() { bytes += [UInt8](repeating: 0, count: 1024) }

    var finished: [UInt8] {
        var copy = self
        copy.end()
        return copy.bytes
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
