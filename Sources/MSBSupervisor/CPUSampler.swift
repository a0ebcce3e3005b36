import Foundation
import MSBOS

/// CPU use of the VMM process (all its threads, vCPUs included) over the last
/// interval of at least a second, from /proc/PID/stat.
struct CPUSampler {
    private var last: (ticks: UInt64, time: Double)?
    private(set) var percentMilli: UInt64 = 0
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    mutating func sample(pid: Int32) {
        let now = Date().timeIntervalSince1970
        if let last, now - last.time < 1 { return }
        guard let ticks = Self.cpuTicks(pid: pid) else { return }
        if let last, now > last.time, ticks >= last.ticks {
            let seconds = Double(ticks - last.ticks) / Self.ticksPerSecond
            percentMilli = UInt64(seconds / (now - last.time) * 100_000)
        }
        last = (ticks, now)
    }

    static func cpuTicks(pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // utime and stime are fields 14 and 15 of the whole line.
        guard fields.count > 13, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return user + system
    }
}
