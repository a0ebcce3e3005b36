import CMSBSys
import Foundation
import MSBProtocol

/// One non-blocking framed connection inside a poll loop: decoded input, buffered output.
final class BufferedPeer {
    let fd: Int32
    private var decoder = FrameDecoder()
    private var outbound: [UInt8] = []
    private var outboundStart = 0

    init(fd: Int32) {
        self.fd = fd
        _ = msb_set_nonblocking(fd, 1)
    }

    var pendingOutboundBytes: Int { outbound.count - outboundStart }

    func send(_ envelope: Envelope) {
        outbound.append(contentsOf: Frame.encode(envelope))
    }

    /// Writes what the socket takes now. False when the peer is gone.
    func flush() -> Bool {
        while pendingOutboundBytes > 0 {
            let n = outbound.withUnsafeBytes { raw in
                write(fd, raw.baseAddress! + outboundStart, min(pendingOutboundBytes, 256 * 1024))
            }
            if n > 0 { outboundStart += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            return false
        }
        if outboundStart == outbound.count {
            outbound.removeAll(keepingCapacity: outbound.count < (1 << 20))
            outboundStart = 0
        } else if outboundStart > (1 << 20) {
            outbound.removeFirst(outboundStart)
            outboundStart = 0
        }
        return true
    }

    /// Blocks until everything queued is written or the deadline passes.
    func flushBlocking(timeoutSeconds: Double) {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while pendingOutboundBytes > 0 && Date() < deadline {
            guard flush() else { return }
            if pendingOutboundBytes > 0 {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 100)
            }
        }
    }

    /// Reads what is available and returns the whole frames; nil when the peer closed
    /// the connection or sent something that is not the protocol.
    func receive() -> [Envelope]? {
        do {
            guard let bytes = try FileDescriptorIO.readSome(fd) else { return nil }
            decoder.append(bytes)
            var envelopes: [Envelope] = []
            while let envelope = try decoder.next() { envelopes.append(envelope) }
            return envelopes
        } catch {
            return nil
        }
    }

    func close() { _ = Glibc.close(fd) }
}
