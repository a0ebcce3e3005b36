import Glibc
import MSBProtocol

/// The supervisor's side of the guest agent's channel (QEMU's virtio-serial socket): typed
/// requests on one non-blocking framed connection, written as the guest takes them. The
/// counterpart of the CLI's `SupervisorConnection`; ids are the sandbox-wide request ids.
final class AgentChannel {
    private let peer: BufferedPeer

    /// Takes ownership of `fd`, the connected chardev socket.
    init(fd: Int32) { peer = BufferedPeer(fd: fd) }

    var fd: Int32 { peer.fd }
    /// Bytes queued that the guest has not taken yet.
    var pendingOutboundBytes: Int { peer.pendingOutboundBytes }

    /// The greeting (repeated at boot until answered: bytes sent before the guest opens its port are lost).
    func hello() { peer.send(Envelope(id: 0, .hello(Hello(software: "msb-supervisor")))) }
    /// The guest's identity for this start (after hello, before any other request).
    func setup(_ setup: GuestSetup) { peer.send(Envelope(id: 0, .setup(setup))) }
    func exec(_ id: UInt32, _ request: ExecRequest) { peer.send(Envelope(id: id, .exec(request))) }

    /// stdin in frames of at most `Frame.maxChunkBytes`.
    func stdin(_ id: UInt32, _ bytes: [UInt8]) {
        for chunk in Frame.chunks(bytes) { peer.send(Envelope(id: id, .stdin(chunk))) }
    }

    func signal(_ id: UInt32, _ signo: Int32) { peer.send(Envelope(id: id, .signal(signo))) }
    func requestStats(_ id: UInt32) { peer.send(Envelope(id: id, .statsRequest)) }
    func fileRequest(_ id: UInt32, _ request: FileRequest) { peer.send(Envelope(id: id, .fileRequest(request))) }
    /// Sync file systems and power off.
    func shutdown() { peer.send(Envelope(id: 0, .shutdown)) }

    /// A client's stdin, stdin close, signal or resize for one of its execs, passed on as is.
    func relay(_ id: UInt32, _ message: Message) { peer.send(Envelope(id: id, message)) }

    /// Writes what the socket takes now. False when the channel is gone.
    func flush() -> Bool { peer.flush() }
    /// The whole frames that arrived; nil when QEMU closed the channel or the guest sent
    /// something that is not the protocol.
    func receive() -> [Envelope]? { peer.receive() }
    /// Why the guest was cut off, when it broke the protocol.
    var protocolViolation: String? { peer.protocolViolation }
    func close() { peer.close() }
}
