import CMSBSys
import Foundation
import MSBProtocol

/// Runs one exec over a supervisor's control socket: stdin is streamed from a
/// background thread as it is read (never buffered to EOF), output is handed to the
/// caller as it arrives, and signals are forwarded to the guest process.
final class ExecClient: @unchecked Sendable {
    private let connection: FramedConnection
    private let writeLock = NSLock()
    private static let requestId: UInt32 = 1

    init(fd: Int32) { connection = FramedConnection(fd: fd) }

    private func send(_ message: Message) {
        writeLock.lock()
        defer { writeLock.unlock() }
        try? connection.send(Envelope(id: Self.requestId, message))
    }

    func run(_ request: ExecRequest, io: ExecIO) throws(MSBError) -> ExecOutcome {
        defer { close(connection.fd) }
        send(.exec(request))
        if let stdinFd = io.stdinFd {
            Thread.detachNewThread { [self] in pumpStdin(stdinFd) }
        }
        while true {
            while let envelope = try nextBuffered() {
                switch envelope.message {
                case .stdout(let bytes): io.stdout(bytes)
                case .stderr(let bytes): io.stderr(bytes)
                case .exited(let status): return .exited(status)
                case .execFailed(let failure): return .failed(failure)
                case .error(let text): throw MSBError(.agentFailure, "the sandbox refused the request: \(text)")
                default: break
                }
            }
            var fds = [pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)]
            if let signalFd = io.signalFd { fds.append(pollfd(fd: signalFd, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { continue }
            if fds.count > 1 && fds[1].revents != 0, let signalFd = io.signalFd {
                var buffer = [UInt8](repeating: 0, count: 16)
                let n = read(signalFd, &buffer, 16)
                if n > 0 { for signo in buffer[0..<n] { send(.signal(Int32(signo))) } }
            }
            if fds[0].revents != 0 {
                let open: Bool
                do { open = try connection.fill() } catch { open = false }
                if !open {
                    if let envelope = try nextBuffered() { _ = envelope }
                    throw MSBError(.agentFailure, "lost the connection to the sandbox before the command finished",
                                   hint: "the sandbox may have stopped; run 'msb ls' to check")
                }
            }
        }
    }

    private func nextBuffered() throws(MSBError) -> Envelope? {
        do { return try connection.nextBuffered() } catch {
            throw MSBError(.agentFailure, "garbled reply from the sandbox supervisor: \(error)")
        }
    }

    private func pumpStdin(_ fd: Int32) {
        while true {
            let chunk: [UInt8]?
            do { chunk = try FileDescriptorIO.readSome(fd, maxBytes: Frame.maxChunkBytes) } catch { chunk = nil }
            guard let chunk else { break }
            if chunk.isEmpty {
                // Non-blocking stdin with nothing yet: wait for it.
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&p, 1, -1)
                continue
            }
            send(.stdin(chunk))
        }
        send(.stdinClose)
    }
}
