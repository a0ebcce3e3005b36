/// A tiny binary codec for protocol messages: big-endian integers, length-prefixed
/// byte strings. Hand-written because the guest agent links Glibc only (no Foundation).
package struct WireWriter {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    package mutating func u8(_ value: UInt8) { bytes.append(value) }
    package mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }
    package mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8)); bytes.append(UInt8(truncatingIfNeeded: value))
    }
    package mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
    package mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
    package mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
    /// Frames are at most `Frame.maxPayloadBytes`, so a count always fits 32 bits.
    package mutating func data(_ value: [UInt8]) { u32(UInt32(truncatingIfNeeded: value.count)); bytes.append(contentsOf: value) }
    package mutating func string(_ value: String) { data(Array(value.utf8)) }
    package mutating func strings(_ values: [String]) {
        u32(UInt32(truncatingIfNeeded: values.count))
        for value in values { string(value) }
    }
}

package struct WireReader {
    private let bytes: [UInt8]
    private var offset: Int

    package init(_ bytes: [UInt8], offset: Int = 0) { self.bytes = bytes; self.offset = offset }

    package var isAtEnd: Bool { offset == bytes.count }

    private mutating func take(_ count: Int) throws(ProtocolError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count - offset >= count else { throw .truncated }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    package mutating func u8() throws(ProtocolError) -> UInt8 {
        guard let byte = try take(1).first else { throw .truncated }
        return byte
    }
    package mutating func bool() throws(ProtocolError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        default: throw .malformed("bad boolean")
        }
    }
    package mutating func u16() throws(ProtocolError) -> UInt16 {
        let s = try take(2)
        return UInt16(truncatingIfNeeded: s[s.startIndex]) << 8 | UInt16(truncatingIfNeeded: s[s.startIndex + 1])
    }
    package mutating func u32() throws(ProtocolError) -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32(truncatingIfNeeded: $1) }
    }
    package mutating func i32() throws(ProtocolError) -> Int32 { Int32(bitPattern: try u32()) }
    package mutating func u64() throws(ProtocolError) -> UInt64 {
        try take(8).reduce(0) { $0 << 8 | UInt64(truncatingIfNeeded: $1) }
    }
    package mutating func data() throws(ProtocolError) -> [UInt8] {
        let count = Int(truncatingIfNeeded: try u32())  // 32 bits always fit a 64-bit Int
        return Array(try take(count))
    }
    package mutating func string() throws(ProtocolError) -> String {
        let raw = try data()
        guard let text = String(validating: raw, as: UTF8.self) else { throw .malformed("string is not UTF-8") }
        return text
    }
    package mutating func strings() throws(ProtocolError) -> [String] {
        let count = Int(truncatingIfNeeded: try u32())
        guard count <= 65536 else { throw .malformed("too many strings") }
        var out: [String] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try string()) }
        return out
    }
}

package enum ProtocolError: Error, Equatable, CustomStringConvertible {
    case truncated
    case malformed(String)
    case frameTooLarge(Int)
    case unknownMessageType(UInt8)

    package var description: String {
        switch self {
        case .truncated: return "truncated message"
        case .malformed(let why): return "malformed message: \(why)"
        case .frameTooLarge(let size): return "frame of \(size) bytes exceeds the \(Frame.maxPayloadBytes)-byte limit"
        case .unknownMessageType(let type): return "unknown message type \(type)"
        }
    }
}
