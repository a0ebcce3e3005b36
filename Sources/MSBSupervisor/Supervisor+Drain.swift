import MSBCore
import MSBOS
import MSBProtocol

/// `msb drain`: the sandbox takes no new commands (exec, REPL runs, file operations) and
/// stops by itself once every command a client started has ended: attached ones, detached
/// ones (`msb exec -d`) and REPL evaluations in progress or queued. Metrics keep working.
/// With a drain timeout, whatever still runs then is ended by an ordinary graceful stop.
extension Supervisor {
    struct DrainRequest {
        /// Monotonic seconds; nil: no limit.
        var deadline: Double?
    }

    /// Why a new command is refused while draining.
    var drainingRefusal: String? {
        guard drain != nil else { return nil }
        return "sandbox \(name) is draining: it takes no new commands and stops once its running ones end"
    }

    func beginDrain(timeoutMilliseconds: UInt64) -> Message {
        if stop != nil { return .error("sandbox is stopping") }
        if paused { return .error("sandbox \(name) is paused; resume it with 'msb resume \(name)' to drain it") }
        if drain == nil {
            drain = DrainRequest(deadline: timeoutMilliseconds == 0 ? nil : MonotonicClock.now() + Double(timeoutMilliseconds) / 1000)
            _ = try? store.update(name) { $0.status = .draining }
            log("draining: \(runningCommandCount) command(s) still running")
        }
        return .drainStarted
    }

    /// Commands clients started that have not ended (stats requests are not commands).
    var runningCommandCount: Int {
        routes.keys.count { !statsRequestIds.contains($0) } + detachedExecIds.count
            + interpreters.interpreters.values.count { $0.current != nil || !$0.queue.isEmpty }
    }

    /// Called once per round of the loop: a drain with nothing left running, or past its
    /// time, becomes a graceful stop.
    func checkDrain(now: Double) {
        guard let drain, stop == nil else { return }
        let running = runningCommandCount
        if running == 0 {
            beginStop(reason: "stopped: drained", force: false)
        } else if let deadline = drain.deadline, now >= deadline {
            beginStop(reason: "stopped: drain timed out with \(running) command(s) still running", force: false)
        }
    }
}
