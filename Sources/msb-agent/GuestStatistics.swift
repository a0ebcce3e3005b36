import CMSBSys
import Glibc
import MSBProtocol

/// Reads the guest's own view of its resources for `msb metrics`.
enum GuestStatistics {
    /// The writable file systems of the base image: all in RAM, so their use is the
    /// sandbox's "disk" use.
    static let writableMounts = ["/", "/tmp", "/run", "/dev/shm"]

    /// What the initramfs itself occupies, measured once at start so it is not counted.
    nonisolated(unsafe) static var baselineUsedBytes: UInt64 = 0

    static func recordBaseline() { baselineUsedBytes = usedBytes() }

    static func usedBytes() -> UInt64 {
        var total: UInt64 = 0
        for path in writableMounts {
            let used = msb_fs_used_bytes(path)
            if used > 0 { total += UInt64(used) }
        }
        return total
    }

    static func collect() -> GuestStats {
        var stats = GuestStats()
        if let meminfo = readFile("/proc/meminfo") {
            for line in meminfo.split(separator: "\n") {
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                guard parts.count >= 2, let value = UInt64(parts[1]) else { continue }
                if parts[0] == "MemTotal:" { stats.memoryTotalKiB = value }
                if parts[0] == "MemAvailable:" { stats.memoryAvailableKiB = value }
            }
        }
        let used = usedBytes()
        stats.diskUsedBytes = used > baselineUsedBytes ? used - baselineUsedBytes : 0
        if let uptime = readFile("/proc/uptime"), let seconds = Double(uptime.split(separator: " ").first ?? "") {
            stats.uptimeMilliseconds = UInt64(seconds * 1000)
        }
        let interface = GuestNetworkSetup.configuredInterface
        if !interface.isEmpty {
            stats.networkReceivedBytes = counter("/sys/class/net/\(interface)/statistics/rx_bytes")
            stats.networkSentBytes = counter("/sys/class/net/\(interface)/statistics/tx_bytes")
        }
        return stats
    }

    /// A sysfs counter (one decimal number), 0 when it cannot be read.
    static func counter(_ path: String) -> UInt64 {
        UInt64((readFile(path) ?? "").trimmingCharacters(in: "\n ")) ?? 0
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buffer, 4096)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
