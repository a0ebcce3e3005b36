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
        // Messages are built by msb (bounded by Frame.chunks); the receiver checks the limit.
        let length = UInt32(truncatingIfNeeded: bytes.count - headerBytes)
        bytes[0] = UInt8(truncatingIfNeeded: length >> 24); bytes[1] = UInt8(truncatingIfNeeded: length >> 16)
        bytes[2] = UInt8(truncatingIfNeeded: length >> 8); bytes[3] = UInt8(truncatingIfNeeded: length)
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
        let length = buffer[start..<(start + 4)].reduce(0) { $0 << 8 | Int(truncatingIfNeeded: $1) }
        guard length <= Frame.maxPayloadBytes else { throw .frameTooLarge(length) }
        guard length >= 5 else { throw .malformed("frame of \(length) bytes is shorter than its header") }
        guard available >= Frame.headerBytes + length else { return nil }
        let payloadStart = start + Frame.headerBytes
        let type = buffer[payloadStart]
        let id = buffer[(payloadStart + 1)...(payloadStart + 4)].reduce(0 as UInt32) { $0 << 8 | UInt32(truncatingIfNeeded: $1) }
        var reader = WireReader(Array(buffer[(payloadStart + 5)..<(payloadStart + length)]))
        start += Frame.headerBytes + length
        let message = try Message.decode(type: type, from: &reader)
        return Envelope(id: id, message)
    }
}
