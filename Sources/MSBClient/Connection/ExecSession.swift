import Glibc
import MSBCore
import MSBOS
import MSBProtocol

/// One command running in a sandbox, over a `SupervisorConnection`: write and close its
/// stdin, signal it, resize its terminal, detach, and read its output up to its end.
/// A command with a timeout must end by then plus `reportGraceSeconds`, or the wait ends
/// with a timeout error; one without is bounded by the supervisor's liveness, and the
/// supervisor's own heartbeat to the guest agent ends it if the agent stops answering.
package final class ExecSession {
    package enum Event {
        case stdout([UInt8])
        case stderr([UInt8])
        case ended(ExecOutcome)
        /// A descriptor passed to `next(watching:)` is readable.
        case readable(Int32)
    }

    /// How long past its timeout the guest gets to report the end of a command.
    package static let reportGraceSeconds = 15.0
    /// Stop reading stdin while this much of it waits for the supervisor to take it.
    static let stdinHighWater = 1 << 20
    private static let requestId: UInt32 = 1
    private let connection: SupervisorConnection
    private let deadline: Double?
    private let timeoutMilliseconds: UInt64

    init(connection: SupervisorConnection, request: ExecRequest) {
        self.connection = connection
        timeoutMilliseconds = request.timeoutMilliseconds
        deadline = request.timeoutMilliseconds > 0
            ? MonotonicClock.now() + Double(request.timeoutMilliseconds) / 1000 + Self.reportGraceSeconds : nil
        connection.lostMessage = "lost the connection to the sandbox before the command finished"
        connection.send(.exec(request), id: Self.requestId)
    }

    private func send(_ message: Message) { connection.send(message, id: Self.requestId) }

    package func writeStdin(_ bytes: [UInt8]) {
        for chunk in Frame.chunks(bytes) { send(.stdin(chunk)) }
    }

    package func closeStdin() { send(.stdinClose) }
    package func signal(_ signo: Int32) { send(.signal(signo)) }
    package func resize(rows: UInt16, cols: UInt16) { send(.resize(rows: rows, cols: cols)) }
    /// Stops relaying: the process runs on in the sandbox.
    package func detach() { send(.detach) }
    /// stdin bytes written that the supervisor has not taken yet.
    package var pendingStdinBytes: Int { connection.pendingOutputBytes }

    /// The next piece of output, the end, or a watched descriptor that became readable.
    package func next(watching watched: [Int32] = []) throws(MSBError) -> Event {
        while true {
            switch try connection.next(until: deadline, watching: watched) {
            case .readable(let fd):
                return .readable(fd)
            case .deadlinePassed:
                signal(SIGKILL)
                connection.flush()
                throw MSBError(.timeout, "the sandbox did not report the end of the command within "
                               + "\(secondsText(Self.reportGraceSeconds))s of its "
                               + "\(secondsText(Double(timeoutMilliseconds) / 1000))s timeout",
                               hint: "the guest may be overloaded or not answering; run 'msb ls' to check the sandbox")
            case .message(let envelope):
                guard envelope.id == Self.requestId else { continue }
                switch envelope.message {
                case .stdout(let bytes): return .stdout(bytes)
                case .stderr(let bytes): return .stderr(bytes)
                case .exited(let status): return .ended(.exited(status))
                case .execFailed(let failure): return .ended(.failed(failure))
                case .error(let text): throw MSBError(.agentFailure, "the sandbox refused the request: \(text)")
                default: continue
                }
            }
        }
    }

    /// Runs the command to its end: stdin is streamed from `io.stdinFd` as it is read (never
    /// buffered to EOF; reading pauses while the supervisor has not taken what was sent),
    /// output goes to `io`'s handlers, signals read from `io.signalFd` are handled.
    package func run(_ io: ExecIO) throws(MSBError) -> ExecOutcome {
        var stdinFd = io.stdinFd
        while true {
            var watched: [Int32] = []
            if let fd = stdinFd, pendingStdinBytes < Self.stdinHighWater { watched.append(fd) }
            if let fd = io.signalFd { watched.append(fd) }
            switch try next(watching: watched) {
            case .stdout(let bytes): io.stdout(bytes)
            case .stderr(let bytes): io.stderr(bytes)
            case .ended(let outcome): return outcome
            case .readable(let fd) where fd == stdinFd:
                let chunk: [UInt8]?
                do { chunk = try FileDescriptorIO.readSome(fd, maxBytes: Frame.maxChunkBytes) } catch { chunk = nil }
                guard let chunk else {
                    closeStdin()
                    stdinFd = nil
                    continue
                }
                guard let filter = io.inputFilter else {
                    writeStdin(chunk)
                    continue
                }
                let (forward, detaching) = filter(chunk)
                writeStdin(forward)
                if detaching {
                    detach()
                    // The detach must reach the supervisor before our connection closes, or
                    // it takes the process for orphaned and kills it.
                    connection.flush()
                    return .detached
                }
            case .readable(let fd):
                var buffer = [UInt8](repeating: 0, count: 16)
                let n = read(fd, &buffer, buffer.count)
                for signo in buffer.prefix(max(0, n)) {
                    if let handler = io.signalHandler { handler(Int32(signo), self) } else { signal(Int32(signo)) }
                }
            }
        }
    }
}

/// Where an exec's streams come from and go to.
package struct ExecIO {
    /// Read until EOF and sent as the process's stdin; nil gives it /dev/null.
    package var stdinFd: Int32?
    package var stdout: ([UInt8]) -> Void
    package var stderr: ([UInt8]) -> Void
    /// Each byte readable here is a signal number (a `SignalPipe`).
    package var signalFd: Int32?
    /// Sees each chunk read from stdin before it is sent: returns the bytes to send, and
    /// whether to detach after them (the CLI's detach keys).
    package var inputFilter: (([UInt8]) -> (forward: [UInt8], detach: Bool))?
    /// Handles a signal read from `signalFd`; without one it is forwarded to the process.
    package var signalHandler: ((Int32, ExecSession) -> Void)?

    package init(stdinFd: Int32?, stdout: @escaping ([UInt8]) -> Void, stderr: @escaping ([UInt8]) -> Void, signalFd: Int32? = nil,
                 inputFilter: (([UInt8]) -> (forward: [UInt8], detach: Bool))? = nil,
                 signalHandler: ((Int32, ExecSession) -> Void)? = nil) {
        self.stdinFd = stdinFd
        self.stdout = stdout
        self.stderr = stderr
        self.signalFd = signalFd
        self.inputFilter = inputFilter
        self.signalHandler = signalHandler
    }
}
