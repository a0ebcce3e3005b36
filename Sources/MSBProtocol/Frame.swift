/// Framing: `[payload length: u32 BE][type: u8][id: u32 BE][body]`, where the length
/// counts type, id and body. Frames over `maxPayloadBytes` are refused on both sides.
package enum Frame {
    package static let headerBytes = 4
    package static let maxPayloadBytes = 1 << 20 + 64
    /// Largest chunk of stdin/stdout/stderr put into one frame.
    package static let maxChunkBytes = 64 * 1024

    /// `bytes` cut into pieces of at most `maxChunkBytes`, one per stdin/stdout frame.
    package static func chunks(_ bytes: [UInt8]) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: maxChunkBytes).map { Array(bytes[$0..<min($0 + maxChunkBytes, bytes.count)]) }
    }

    package static func encode(_ envelope: Envelope) -> [UInt8] {
        var w = WireWriter(capacity: 64)
        w.u32(0)  // patched below
        w.u8(envelope.message.typeCode)
        w.u32(envelope.id)
        envelope.message.encodeBody(into: &w)
        var bytes = w.bytes
        let length = UInt32(bytes.count - headerBytes)
        bytes[0] = UInt8(length >> 24); bytes[1] = UInt8((length >> 16) & 0xff)
        bytes[2] = UInt8((length >> 8) & 0xff); bytes[3] = UInt8(length & 0xff)
        return bytes
    }
}

/// Incremental decoder: feed it whatever `read` returned, take out whole frames.
/// Any error is fatal for the connection (the stream can no longer be trusted).
package struct FrameDecoder {
    private var buffer: [UInt8] = []
    private var start = 0

    package init() {}

    package var bufferedBytes: Int { buffer.count - start }

    package mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    package mutating func next() throws(ProtocolError) -> Envelope? {
        let available = buffer.count - start
        guard available >= Frame.headerBytes else { return nil }
        let length = Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16
            | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
        guard length <= Frame.maxPayloadBytes else { throw .frameTooLarge(length) }
        guard length >= 5 else { throw .malformed("frame of \(length) bytes is shorter than its header") }
        guard available >= Frame.headerBytes + length else { return nil }
        let payloadStart = start + Frame.headerBytes
        let type = buffer[payloadStart]
        let id = UInt32(buffer[payloadStart + 1]) << 24 | UInt32(buffer[payloadStart + 2]) << 16
            | UInt32(buffer[payloadStart + 3]) << 8 | UInt32(buffer[payloadStart + 4])
        var reader = WireReader(Array(buffer[(payloadStart + 5)..<(payloadStart + length)]))
        start += Frame.headerBytes + length
        let message = try Message.decode(type: type, from: &reader)
        return Envelope(id: id, message)
    }
}
