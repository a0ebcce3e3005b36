import CMSBSys
import Foundation
import MSBCore
import MSBOS
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

    /// Written to by the stdin thread when it saw the detach keys.
    private var detachPipe: [Int32] = [-1, -1]

    func run(_ request: ExecRequest, io: ExecIO) throws(MSBError) -> ExecOutcome {
        defer {
            close(connection.fd)
            for fd in detachPipe where fd >= 0 { close(fd) }
        }
        _ = msb_pipe(&detachPipe, 1)
        send(.exec(request))
        if let stdinFd = io.stdinFd {
            let detachKeys = io.detachKeys
            Thread.detachNewThread { [self] in pumpStdin(stdinFd, detachKeys: detachKeys) }
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
            var fds = [pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: detachPipe[0], events: Int16(POLLIN), revents: 0)]
            if let signalFd = io.signalFd { fds.append(pollfd(fd: signalFd, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { continue }
            if fds[1].revents != 0 { return .detached }
            if fds.count > 2 && fds[2].revents != 0, let signalFd = io.signalFd {
                var buffer = [UInt8](repeating: 0, count: 16)
                let n = read(signalFd, &buffer, 16)
                if n > 0 {
                    for signo in buffer[0..<n] {
                        if Int32(signo) == SIGWINCH {
                            if let size = io.windowSize?() { send(.resize(rows: size.rows, cols: size.cols)) }
                        } else {
                            send(.signal(Int32(signo)))
                        }
                    }
                }
            }
            if fds[0].revents != 0 {
                let open: Bool
                do { open = try connection.fill() } catch { open = false }
                if !open {
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

    private func pumpStdin(_ fd: Int32, detachKeys: [UInt8]?) {
        var matched = 0  // how much of the detach sequence the last bytes matched
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
            if let keys = detachKeys, !keys.isEmpty {
                var forward: [UInt8] = []
                for byte in chunk {
                    if byte == keys[matched] {
                        matched += 1
                        if matched == keys.count {
                            if !forward.isEmpty { send(.stdin(forward)) }
                            send(.detach)
                            var one: UInt8 = 1
                            _ = write(detachPipe[1], &one, 1)
                            return
                        }
                    } else {
                        forward += keys[0..<matched]
                        matched = byte == keys[0] ? 1 : 0
                        if matched == 0 { forward.append(byte) }
                    }
                }
                if !forward.isEmpty { send(.stdin(forward)) }
                continue
            }
            send(.stdin(chunk))
        }
        send(.stdinClose)
    }
}
