import CMSBSys
import Foundation
import MSBCore
import MSBOS
import MSBProtocol
import MSBVMM

/// One non-blocking framed connection inside a poll loop: decoded input, buffered output.
final class BufferedPeer {
    let fd: Int32
    private var decoder = FrameDecoder()
    private var outbound = OutboundBuffer()

    init(fd: Int32) {
        self.fd = fd
        _ = msb_set_nonblocking(fd, 1)
    }

    var pendingOutboundBytes: Int { outbound.pendingBytes }

    func send(_ envelope: Envelope) {
        outbound.append(Frame.encode(envelope))
    }

    /// Writes what the socket takes now. False when the peer is gone.
    func flush() -> Bool { outbound.flush(to: fd) }

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

    /// Why the peer was cut off, when it sent something that is not the protocol.
    private(set) var protocolViolation: String?

    /// Reads what is available and returns the whole frames; nil when the peer closed
    /// the connection or sent something that is not the protocol (`protocolViolation`).
    func receive() -> [Envelope]? {
        guard let bytes = try? FileDescriptorIO.readSome(fd) else { return nil }
        decoder.append(bytes)
        var envelopes: [Envelope] = []
        do {
            while let envelope = try decoder.next() { envelopes.append(envelope) }
        } catch {
            protocolViolation = "\(error)"
            return nil
        }
        return envelopes
    }

    func close() { _ = Glibc.close(fd) }
}
