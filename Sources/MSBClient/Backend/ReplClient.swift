import CMSBSys
import Foundation
import MSBCore
import MSBOS
import MSBProtocol

/// Evaluates code in a sandbox's long-lived interpreter over the supervisor's control
/// socket: output streams back as it is produced, Ctrl-C (a byte on `interruptFd`) or
/// the timeout interrupts the evaluation (SIGINT, then SIGKILL after a grace period),
/// and the interpreter's earlier state survives an interrupt where the language allows.
enum ReplClient {
    static let killGraceSeconds = 3.0

    static func run(fd: Int32, language: String, code: String, timeoutMilliseconds: UInt64?,
                    interruptFd: Int32?, stdout: ([UInt8]) -> Void, stderr: ([UInt8]) -> Void) throws(MSBError) -> ReplOutcome {
        let connection = FramedConnection(fd: fd)
        defer { close(fd) }
        let deadline = timeoutMilliseconds.map { Date().addingTimeInterval(Double($0) / 1000) }
        var interruptedAt: Date?
        var killed = false
        func interrupt() {
            try? connection.send(Envelope(id: 1, .signal(SIGINT)))
            if interruptedAt == nil { interruptedAt = Date() }
        }
        do {
            try connection.send(Envelope(id: 1, .replRun(language: language, code: code)))
            while true {
                while let envelope = try connection.nextBuffered() {
                    switch envelope.message {
                    case .stdout(let bytes): stdout(bytes)
                    case .stderr(let bytes): stderr(bytes)
                    case .replDone(var outcome):
                        if let deadline, Date() >= deadline, outcome.status != "success" {
                            outcome = ReplOutcome(status: "error", message: "timed out after \(timeoutMilliseconds! / 1000)s" +
                                                  (outcome.message.isEmpty ? "" : "; " + outcome.message))
                        }
                        return outcome
                    default: break
                    }
                }
                var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
                if let interruptFd { fds.append(pollfd(fd: interruptFd, events: Int16(POLLIN), revents: 0)) }
                var wait: Int32 = 200
                if let deadline, interruptedAt == nil { wait = Int32(max(0, min(200, deadline.timeIntervalSinceNow * 1000))) }
                _ = poll(&fds, nfds_t(fds.count), wait)
                if fds.count > 1 && fds[1].revents != 0, let interruptFd {
                    var buffer = [UInt8](repeating: 0, count: 16)
                    if read(interruptFd, &buffer, 16) > 0 { interrupt() }
                }
                if let deadline, Date() >= deadline, interruptedAt == nil { interrupt() }
                if let at = interruptedAt, !killed, Date().timeIntervalSince(at) > killGraceSeconds {
                    // The code ignored SIGINT: end the interpreter (it restarts on the next run).
                    try? connection.send(Envelope(id: 1, .signal(SIGKILL)))
                    killed = true
                }
                if fds[0].revents != 0, try !connection.fill() {
                    throw MSBError(.agentFailure, "lost the connection to the sandbox during the evaluation",
                                   hint: "the sandbox may have stopped; run 'msb ls' to check")
                }
            }
        } catch let error as MSBError {
            throw error
        } catch {
            throw MSBError(.agentFailure, "REPL connection failed: \(error)")
        }
    }
}
