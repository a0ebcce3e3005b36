import MSBCore
import MSBOS

extension LocalBackend {
    /// Waits on the sandbox's supervisor process, which records how the sandbox ended before
    /// it exits (a supervisor that dies without doing so makes it `crashed`): a pidfd wakes
    /// at the exit, so nothing polls the database.
    package func wait(_ name: String, timeoutSeconds: Double) throws(MSBError) -> SandboxInfo {
        let deadline = MonotonicClock.now() + max(0, timeoutSeconds)
        while true {
            let record = try existing(name)
            // A running record always names its supervisor; reconciliation makes one that
            // does not `crashed`.
            guard record.status.expectsSupervisor, let supervisor = record.supervisor else { return described(record) }
            let leftSeconds = deadline - MonotonicClock.now()
            guard leftSeconds > 0 else { return described(record) }
            if !supervisor.waitForExit(timeoutSeconds: leftSeconds) { return described(try existing(name)) }
            // The supervisor is gone: the next look reads how the sandbox ended (or finds a
            // new start, whose supervisor is waited on in turn).
        }
    }
}

extension LocalBackend {
    /// `msb drain`: the supervisor refuses new commands and stops the sandbox once the
    /// running ones end (Supervisor+Drain); this returns as soon as it is draining.
    package func drain(_ name: String, timeoutSeconds: Double?) throws(MSBError) -> SandboxInfo {
        let record = try existing(name).reconciled()
        switch record.status {
        case .draining: return described(record)
        case .running: break
        case .created, .stopped, .crashed:
            throw MSBError(.invalidState, "failed to drain: sandbox \(name) is \(record.status.rawValue)", hint: "there is nothing running to drain")
        case .starting, .paused, .stopping:
            throw MSBError(.invalidState, "failed to drain: sandbox \(name) is \(record.status.rawValue)",
                           hint: record.status == .paused ? "resume it with 'msb resume \(name)' first" : "try again in a moment")
        }
        // 0 is "no limit" on the wire; a limit is at least a millisecond and at most ~31 years.
        let timeoutMilliseconds: UInt64 = timeoutSeconds.map { seconds in
            seconds.isFinite && seconds > 0 ? UInt64(min(seconds * 1000, 1e12).rounded(.up)) : 0
        } ?? 0
        guard let fd = try? UnixSocket.connect(path: paths.controlSocket(name)) else { throw try notRunningError(name, action: "drain") }
        do { try SupervisorConnection(fd: fd).drain(timeoutMilliseconds: timeoutMilliseconds) } catch {
            throw MSBError(error.code, "failed to drain: \(error.message)", hint: error.hint)
        }
        return described(try existing(name))
    }
}
