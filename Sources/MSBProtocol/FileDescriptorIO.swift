#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Blocking helpers over raw file descriptors, shared by the agent and the host.
package enum FileDescriptorIO {
    /// Writes every byte, retrying on EINTR and short writes; waits on EAGAIN.
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(ProtocolError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                write(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 1000)
                continue
            }
            throw .closed
        }
    }

    /// One read of up to `maxBytes`; nil on EOF, empty on EAGAIN.
    package static func readSome(_ fd: Int32, maxBytes: Int = 65536) throws(ProtocolError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, maxBytes) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n == 0 { return nil }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return [] }
            if errno == EIO || errno == ECONNRESET { return nil }
            throw .closed
        }
    }
}

/// A blocking framed connection: used by the CLI and the supervisor's boot handshake.
package final class FramedConnection {
    package let fd: Int32
    private var decoder = FrameDecoder()

    package init(fd: Int32) { self.fd = fd }

    package func send(_ envelope: Envelope) throws(ProtocolError) {
        try FileDescriptorIO.writeAll(fd, Frame.encode(envelope))
    }

    /// Blocks until a whole frame arrives; throws `.closed` on EOF.
    package func receive() throws(ProtocolError) -> Envelope {
        while true {
            if let envelope = try decoder.next() { return envelope }
            guard let bytes = try FileDescriptorIO.readSome(fd) else { throw .closed }
            decoder.append(bytes)
        }
    }

    /// Returns a buffered frame if one is complete, without reading.
    package func nextBuffered() throws(ProtocolError) -> Envelope? { try decoder.next() }

    /// Reads once (the fd should be readable) and buffers what came; false on EOF.
    package func fill() throws(ProtocolError) -> Bool {
        guard let bytes = try FileDescriptorIO.readSome(fd) else { return false }
        decoder.append(bytes)
        return true
    }
}
