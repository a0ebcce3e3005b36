import CMSBSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A process named by pid *and* start time, so a recycled pid is never mistaken for it.
package struct ProcessIdentity: Equatable, Sendable {
    package let pid: Int32
    package let startTicks: UInt64

    package init(pid: Int32, startTicks: UInt64) {
        self.pid = pid
        self.startTicks = startTicks
    }

    /// The identity of a live process, or nil if there is none (zombies count as dead).
    package static func of(pid: Int32) -> ProcessIdentity? {
        guard pid > 0, let fields = statFields(pid: pid) else { return nil }
        // Fields after "(comm)": state is field 3, starttime is field 22.
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X", let ticks = UInt64(fields[19]) else { return nil }
        return ProcessIdentity(pid: pid, startTicks: ticks)
    }

    /// The fields of /proc/PID/stat after the command name (which may hold spaces).
    package static func statFields(pid: Int32) -> [Substring]? {
        guard let bytes = FileDescriptorIO.readFile("/proc/\(pid)/stat", limitBytes: 4096) else { return nil }
        let stat = String(decoding: bytes, as: UTF8.self)
        guard let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    package var isAlive: Bool { ProcessIdentity.of(pid: pid) == self }

    /// Sends a signal only if this very process is still alive.
    @discardableResult
    package func signal(_ signo: Int32) -> Bool {
        guard isAlive else { return false }
        return kill(pid, signo) == 0
    }

    /// Blocks until this process has exited or `timeoutSeconds` passed; true once it is gone.
    /// A pidfd wakes at the exit (of any process, not only a child); where there is none
    /// (Linux before 5.3) the process is looked at with a growing pause, up to half a second.
    package func waitForExit(timeoutSeconds: Double) -> Bool {
        let deadline = MonotonicClock.now() + max(0, timeoutSeconds)
        let pidfd = msb_pidfd_open(pid)
        guard pidfd >= 0 else { return lookForExit(until: deadline) }
        defer { close(pidfd) }
        // The descriptor names whichever process has the pid now: its exit is this one's
        // only if it is still this very process (same start time).
        guard isAlive else { return true }
        while true {
            var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, MonotonicClock.milliseconds(until: deadline))
            if ready > 0 { return true }
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 { return lookForExit(until: deadline) }
            return !isAlive
        }
    }

    private func lookForExit(until deadline: Double) -> Bool {
        var pauseSeconds = 0.01
        while isAlive {
            let leftSeconds = deadline - MonotonicClock.now()
            guard leftSeconds > 0 else { return false }
            usleep(UInt32(min(pauseSeconds, leftSeconds) * 1_000_000))
            pauseSeconds = min(pauseSeconds * 2, 0.5)
        }
        return true
    }
}
