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
