import Foundation

/// A process named by pid *and* start time, so a recycled pid is never mistaken for it.
public struct ProcessIdentity: Equatable, Sendable {
    public let pid: Int32
    public let startTicks: UInt64

    public init(pid: Int32, startTicks: UInt64) {
        self.pid = pid
        self.startTicks = startTicks
    }

    /// The identity of a live process, or nil if there is none (zombies count as dead).
    public static func of(pid: Int32) -> ProcessIdentity? {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3, starttime is field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X", let ticks = UInt64(fields[19]) else { return nil }
        return ProcessIdentity(pid: pid, startTicks: ticks)
    }

    public var isAlive: Bool { ProcessIdentity.of(pid: pid) == self }

    /// Sends a signal only if this very process is still alive.
    @discardableResult
    public func signal(_ signo: Int32) -> Bool {
        guard isAlive else { return false }
        return kill(pid, signo) == 0
    }
}
