import MSBOS

/// A blocking framed connection: used by the supervisor's boot handshake and tests.
package final class FramedConnection {
    package let fd: Int32
    private var decoder = FrameDecoder()

    package init(fd: Int32) { self.fd = fd }

    package func send(_ envelope: Envelope) throws(ProtocolError) {
        do { try FileDescriptorIO.writeAll(fd, Frame.encode(envelope)) } catch { throw .closed }
    }

    /// Blocks until a whole frame arrives; throws `.closed` on EOF.
    package func receive() throws(ProtocolError) -> Envelope {
        while true {
            if let envelope = try decoder.next() { return envelope }
            guard try fill() else { throw .closed }
        }
    }

    /// Returns a buffered frame if one is complete, without reading.
    package func nextBuffered() throws(ProtocolError) -> Envelope? { try decoder.next() }

    /// Reads once (the fd should be readable) and buffers what came; false on EOF.
    package func fill() throws(ProtocolError) -> Bool {
        let bytes: [UInt8]?
        do { bytes = try FileDescriptorIO.readSome(fd) } catch { throw .closed }
        guard let bytes else { return false }
        decoder.append(bytes)
        return true
    }
}
