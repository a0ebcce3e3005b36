import Glibc
import MSBCore
import MSBOS
import MSBProtocol

extension SupervisorConnection {
    /// After an interrupt, how long the code gets to stop before its interpreter is killed.
    package static let replKillGraceSeconds = 3.0
    /// After the kill, how long the supervisor gets to report the end of the evaluation.
    static let replReportGraceSeconds = 15.0

    /// Evaluates code in the sandbox's long-lived interpreter for `language`: output streams
    /// back as it is produced; a byte on `interruptFd` (Ctrl-C) or the timeout interrupts the
    /// evaluation (SIGINT, then SIGKILL after a grace period), so the interpreter's earlier
    /// state survives an interrupt where the language allows.
    package func runCode(language: String, code: String, timeoutMilliseconds: UInt64?, interruptFd: Int32?,
                         stdout: ([UInt8]) -> Void, stderr: ([UInt8]) -> Void) throws(MSBError) -> ReplOutcome {
        let requestId: UInt32 = 1
        lostMessage = "lost the connection to the sandbox during the evaluation"
        send(.replRun(language: language, code: code), id: requestId)
        let timeoutAt = timeoutMilliseconds.map { MonotonicClock.now() + Double($0) / 1000 }
        var interruptedAt: Double?
        var killedAt: Double?
        while true {
            // The next thing to do: interrupt at the timeout, kill after the grace, give up after that.
            let wakeAt: Double? = if let killedAt { killedAt + Self.replReportGraceSeconds }
                else if let interruptedAt { interruptedAt + Self.replKillGraceSeconds }
                else { timeoutAt }
            let event = try next(until: wakeAt, watching: interruptFd.map { [$0] } ?? [])
            switch event {
            case .message(let envelope) where envelope.id == requestId:
                switch envelope.message {
                case .stdout(let bytes): stdout(bytes)
                case .stderr(let bytes): stderr(bytes)
                case .replDone(var outcome):
                    if let timeoutAt, let timeoutMilliseconds, MonotonicClock.now() >= timeoutAt, outcome.status != "success" {
                        outcome = ReplOutcome(status: "error", message: "timed out after \(timeoutMilliseconds / 1000)s"
                                              + (outcome.message.isEmpty ? "" : "; " + outcome.message))
                    }
                    return outcome
                case .error(let text): throw MSBError(.agentFailure, "the sandbox refused the request: \(text)")
                default: continue
                }
            case .message:
                continue
            case .readable(let fd):
                var buffer = [UInt8](repeating: 0, count: 16)
                if read(fd, &buffer, buffer.count) > 0, interruptedAt == nil {
                    send(.signal(SIGINT), id: requestId)
                    interruptedAt = MonotonicClock.now()
                }
            case .deadlinePassed:
                let now = MonotonicClock.now()
                if killedAt != nil {
                    throw MSBError(.timeout, "the sandbox did not end the evaluation within "
                                   + "\(secondsText(Self.replReportGraceSeconds))s of killing its interpreter",
                                   hint: "the guest may be overloaded or not answering; run 'msb ls' to check the sandbox")
                } else if interruptedAt != nil {
                    // The code ignored SIGINT: end the interpreter (it restarts on the next run).
                    send(.signal(SIGKILL), id: requestId)
                    killedAt = now
                } else {
                    send(.signal(SIGINT), id: requestId)
                    interruptedAt = now
                }
            }
        }
    }
}
