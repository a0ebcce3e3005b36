import Foundation
import Testing

/// `msb metrics` against a sandbox of its own (busy loops would disturb other tests).
@Suite(.serialized) struct MetricsTests {
    func metrics(_ name: String) throws -> [String: Any] {
        let out = try MSBHarness.ok(["metrics", name, "--format", "json"])
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
    }

    @Test func busyMemoryAndDiskShowUp() throws {
        let name = MSBHarness.uniqueName("metrics")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name])
        sleep(3)
        let idle = try metrics(name)
        #expect(Set(idle.keys) == ["name", "namespace", "running", "status", "cpu_usage", "memory_usage", "memory_limit",
                                   "disk_usage", "uptime_seconds", "network_rx_bytes", "network_tx_bytes"])
        #expect(idle["name"] as? String == name)
        #expect(idle["namespace"] as? String == "default")
        #expect(idle["running"] as? Bool == true)
        #expect(idle["memory_limit"] as? Int == 512)
        let idleCPU = idle["cpu_usage"] as? Double ?? 1000
        let idleMemory = idle["memory_usage"] as? Int ?? 0
        let idleDisk = idle["disk_usage"] as? Int ?? 0

        // CPU: a busy loop in the guest.
        let busy = Process()
        busy.executableURL = URL(fileURLWithPath: MSBHarness.binary)
        busy.arguments = ["exec", name, "--timeout", "6s", "--", "sh", "-c", "while :; do :; done"]
        busy.environment = MSBHarness.environment()
        try busy.run()
        sleep(3)
        let loaded = try metrics(name)
        busy.waitUntilExit()
        let busyCPU = loaded["cpu_usage"] as? Double ?? 0
        // Other suites' VMs share the 2 cores: a busy loop measured 43% of one there.
        #expect(busyCPU > 25 && busyCPU > idleCPU * 3, "idle \(idleCPU)% busy \(busyCPU)%")

        // Memory: 100 MiB held in guest RAM (tmpfs pages cannot be reclaimed while they exist).
        try MSBHarness.ok(["exec", name, "--", "dd", "if=/dev/zero", "of=/dev/shm/hold", "bs=1048576", "count=100"])
        let grown = try metrics(name)["memory_usage"] as? Int ?? 0
        try MSBHarness.ok(["exec", name, "--", "rm", "/dev/shm/hold"])
        #expect(grown - idleMemory >= 90 && grown - idleMemory <= 200, "memory \(idleMemory) -> \(grown) MiB")

        // Disk: a 50 MB file in the writable layer.
        try MSBHarness.ok(["exec", name, "--", "dd", "if=/dev/zero", "of=/root/blob", "bs=1000000", "count=50"])
        let disk = try metrics(name)["disk_usage"] as? Int ?? 0
        #expect(disk - idleDisk >= 50_000_000 && disk - idleDisk < 60_000_000, "disk \(idleDisk) -> \(disk)")
    }

    @Test func tableWatchAndStoppedSandboxes() throws {
        let name = SharedSandbox.name
        let table = try MSBHarness.ok(["metrics", name])
        #expect(table.hasPrefix("NAME"))
        #expect(table.split(separator: "\n").first?.split(separator: " ", omittingEmptySubsequences: true)
                == ["NAME", "STATUS", "CPU%", "MEM(MiB)", "MEM-LIMIT", "DISK", "NET-RX", "NET-TX", "UPTIME"])
        // --watch with JSON: one line per interval until interrupted.
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: MSBHarness.binary)
        watcher.arguments = ["metrics", name, "--watch", "--format", "json", "--interval", "300ms"]
        watcher.environment = MSBHarness.environment()
        let out = Pipe()
        watcher.standardOutput = out
        try watcher.run()
        usleep(1_500_000)
        kill(watcher.processIdentifier, SIGINT)
        watcher.waitUntilExit()
        #expect(watcher.terminationStatus == 0)
        let lines = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        #expect(lines.count >= 2)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["name"] as? String == name)
        }

        let stoppedName = MSBHarness.uniqueName("idle")
        defer { _ = try? MSBHarness.run(["rm", "-f", stoppedName]) }
        try MSBHarness.ok(["create", "--name", stoppedName])
        try MSBHarness.ok(["stop", stoppedName])
        let stopped = try JSONSerialization.jsonObject(with: Data(try MSBHarness.ok(["metrics", stoppedName, "--format", "json"]).utf8)) as? [String: Any]
        #expect(stopped?["running"] as? Bool == false)
        #expect(stopped?["cpu_usage"] is NSNull)
        let all = try MSBHarness.ok(["metrics", "--all", "--format", "json"])
        #expect(!all.contains(stoppedName))
    }
}
