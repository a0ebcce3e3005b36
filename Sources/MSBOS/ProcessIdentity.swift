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
}
