import Foundation
import Testing

/// Starts from saved templates: each restored sandbox is its own machine (name, clock,
/// randomness, files), templates follow their inputs, and every failure boots cold.
@Suite(.serialized) struct TemplateTests {
    /// A templates directory of the test's own, so it controls what exists.
    struct PrivateTemplates {
        let directory = MSBHarness.home + "/tpl-\(UInt32.random(in: 0...UInt32.max) % 100_000)"
        var env: [String: String] { ["MSB_TEMPLATES": directory] }
        /// The template directories (not their locks, keeper sockets and logs).
        var keys: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { name in
                var isDirectory: ObjCBool = false
                return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory)
                    && isDirectory.boolValue
            }
        }
        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    static func boot(_ name: String) throws -> String {
        try MSBHarness.listed(name)?["boot"] as? String ?? ""
    }

    static func supervisorLog(_ name: String) -> String {
        (try? String(contentsOfFile: MSBHarness.home + "/sandboxes/\(name)/supervisor.log", encoding: .utf8)) ?? ""
    }

    @Test func restoredSandboxesAreDistinctMachines() throws {
        let names = [MSBHarness.uniqueName("tpl-a"), MSBHarness.uniqueName("tpl-b")]
        defer { _ = try? MSBHarness.run(["rm", "-f"] + names) }
        for name in names {
            #expect(try MSBHarness.ok(["create", "--name", name, "-e", "GREETING=hi", "-w", "/tmp"]) == "\(name)\n")
        }
        let boots = try names.map(Self.boot)
        #expect(boots[0].hasPrefix("template "), "\(boots[0])")
        #expect(boots[0] == boots[1])
        var randomness: [String] = []
        for name in names {
            let before = Date().timeIntervalSince1970
            let out = try MSBHarness.ok(["exec", name, "--", "sh", "-c", "hostname; echo $GREETING; pwd; date +%s; head -c 16 /dev/urandom | od -An -tx1"])
            let after = Date().timeIntervalSince1970
            let lines = out.split(separator: "\n").map(String.init)
            #expect(Array(lines.prefix(3)) == [name, "hi", "/tmp"])
            let guestSeconds = Double(lines.count > 3 ? lines[3] : "") ?? 0
            #expect(guestSeconds >= before.rounded(.down) - 1 && guestSeconds <= after + 1, "guest clock \(guestSeconds), host \(before)…\(after)")
            randomness.append(lines.dropFirst(4).joined())
        }
        #expect(randomness[0].count >= 32)
        #expect(randomness[0] != randomness[1], "two sandboxes from one template produced the same random bytes")
    }

    @Test func filesArePerSandboxAndSurviveStopStart() throws {
        #expect(ImageTests.built)
        let first = MSBHarness.uniqueName("tpl-f1"), second = MSBHarness.uniqueName("tpl-f2")
        defer { _ = try? MSBHarness.run(["rm", "-f", first, second]) }
        try MSBHarness.ok(["create", "--name", first, "--image", "python"])
        try MSBHarness.ok(["create", "--name", second, "--image", "python"])
        #expect(try Self.boot(first).hasPrefix("template "))
        try MSBHarness.ok(["exec", first, "--", "sh", "-c", "echo mine > /root/note"])
        let other = try MSBHarness.run(["exec", second, "--", "cat", "/root/note"])
        #expect(other.status == 1)
        #expect(other.stderr.contains("No such file"))
        try MSBHarness.ok(["stop", first])
        try MSBHarness.ok(["start", first])
        #expect(try Self.boot(first).hasPrefix("template "))
        #expect(try MSBHarness.ok(["exec", first, "--", "cat", "/root/note"]) == "mine\n")
        #expect(try MSBHarness.ok(["exec", first, "--", "python3", "-c", "print(6*7)"]) == "42\n")
    }

    @Test func aChangedInitramfsGetsANewTemplate() throws {
        guard let shared = MSBHarness.artifacts else { return }
        let templates = PrivateTemplates()
        let artifacts = MSBHarness.home + "/guest-\(getpid())"
        let names = [MSBHarness.uniqueName("tpl-i1"), MSBHarness.uniqueName("tpl-i2")]
        defer {
            _ = try? MSBHarness.run(["rm", "-f"] + names, env: templates.env)
            templates.remove()
            try? FileManager.default.removeItem(atPath: artifacts)
        }
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        for file in ["vmlinux", "initramfs.cpio", "kernel-release"] where FileManager.default.fileExists(atPath: shared + "/" + file) {
            try FileManager.default.copyItem(atPath: shared + "/" + file, toPath: artifacts + "/" + file)
        }
        let env = templates.env.merging(["MSB_ARTIFACTS": artifacts]) { $1 }
        try MSBHarness.ok(["create", "--name", names[0]], env: env)
        let firstBoot = try Self.boot(names[0])
        // Rewritten (same bytes, new identity): the old template must not be used.
        let initramfs = artifacts + "/initramfs.cpio"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: initramfs))
        try FileManager.default.removeItem(atPath: initramfs)
        try bytes.write(to: URL(fileURLWithPath: initramfs))
        try MSBHarness.ok(["create", "--name", names[1]], env: env)
        let secondBoot = try Self.boot(names[1])
        #expect(firstBoot.hasPrefix("template ") && secondBoot.hasPrefix("template "))
        #expect(firstBoot != secondBoot)
        #expect(Self.supervisorLog(names[1]).contains("building the start template"))
        #expect(try MSBHarness.ok(["exec", names[1], "--", "hostname"]) == names[1] + "\n")
    }

    @Test func concurrentFirstCreatesBuildOneTemplate() throws {
        let templates = PrivateTemplates()
        let names = (1...3).map { _ in MSBHarness.uniqueName("tpl-c") }
        defer {
            _ = try? MSBHarness.run(["rm", "-f"] + names, env: templates.env)
            templates.remove()
        }
        let statuses = StatusBox()
        DispatchQueue.concurrentPerform(iterations: names.count) { index in
            let status = (try? MSBHarness.run(["create", "--name", names[index]], env: templates.env).status) ?? -1
            statuses.set(index, status)
        }
        #expect(statuses.all(count: names.count) == Array(repeating: 0, count: names.count))
        let boots = try names.map(Self.boot)
        #expect(Set(boots).count == 1 && boots[0].hasPrefix("template "), "\(boots)")
        let builds = names.map { Self.supervisorLog($0).components(separatedBy: "building the start template").count - 1 }
        #expect(builds.reduce(0, +) == 1, "builds per sandbox: \(builds)")
        #expect(templates.keys.count == 1)
    }

    @Test func aCorruptTemplateBootsColdOnceAndIsRebuilt() throws {
        let templates = PrivateTemplates()
        let names = (1...3).map { _ in MSBHarness.uniqueName("tpl-x") }
        defer {
            _ = try? MSBHarness.run(["rm", "-f"] + names, env: templates.env)
            templates.remove()
        }
        try MSBHarness.ok(["create", "--name", names[0]], env: templates.env)
        let key = try #require(templates.keys.first)
        try Data("not a saved VM".utf8).write(to: URL(fileURLWithPath: templates.directory + "/" + key + "/state.bin"))
        let fallback = try MSBHarness.run(["create", "--name", names[1]], env: templates.env)
        #expect(fallback.status == 0)
        #expect(fallback.out == names[1] + "\n")
        let notice = fallback.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(notice.hasPrefix("msb: \(names[1]) started by a cold boot: the template \(key) could not be restored ("), "\(fallback.stderr)")
        #expect(notice.hasSuffix("); it was removed"))
        #expect(fallback.stderr.split(separator: "\n").filter { $0.contains("cold boot") }.count == 1)
        #expect(try Self.boot(names[1]).hasPrefix("cold boot: the template \(key) could not be restored"))
        #expect(try MSBHarness.ok(["exec", names[1], "--", "echo", "works"]) == "works\n")
        #expect(templates.keys.isEmpty)
        // The next start builds a sound one.
        try MSBHarness.ok(["create", "--name", names[2]], env: templates.env)
        #expect(try Self.boot(names[2]) == "template \(key)")
    }

    @Test func coldFlagBootsTheKernel() throws {
        let name = MSBHarness.uniqueName("tpl-cold")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        let result = try MSBHarness.run(["create", "--name", name, "--cold"])
        #expect(result.status == 0)
        #expect(!result.stderr.contains("cold boot"))
        #expect(try Self.boot(name) == "cold boot: requested with --cold")
        #expect(try MSBHarness.ok(["exec", name, "--", "hostname"]) == name + "\n")
    }

    /// The descriptors of the sandbox's QEMU that refer to the template's memory.
    static func templateMemoryDescriptors(_ name: String) -> [String] {
        guard let pid = MSBHarness.processes(matching: "-name msb-\(name) ").first else { return [] }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.map { "/proc/\(pid)/fd/\($0)" }.filter {
            ((try? FileManager.default.destinationOfSymbolicLink(atPath: $0)) ?? "").hasPrefix("/memfd:msb-template-ram")
        }
    }

    /// A guest that took over its QEMU holds whatever QEMU holds: a read-write descriptor of
    /// the template's memory (QEMU 7.2 opens its RAM read-write). Writing through it must
    /// fail, or one sandbox could change every later one and its running siblings.
    @Test func aTakenOverQEMUCannotWriteTheTemplateMemory() throws {
        let templates = PrivateTemplates()
        let names = [MSBHarness.uniqueName("tpl-w1"), MSBHarness.uniqueName("tpl-w2")]
        defer {
            _ = try? MSBHarness.run(["rm", "-f"] + names, env: templates.env)
            templates.remove()
        }
        for name in names { try MSBHarness.ok(["create", "--name", name], env: templates.env) }
        let key = try #require(templates.keys.first)
        // The file itself is for the keeper only.
        var file = stat()
        #expect(stat(templates.directory + "/" + key + "/memory.ram", &file) == 0)
        #expect(file.st_mode & 0o777 == 0o600 && file.st_uid == geteuid())
        var inodes: Set<UInt64> = []
        for name in names {
            let descriptors = Self.templateMemoryDescriptors(name)
            #expect(!descriptors.isEmpty, "QEMU of \(name) maps no template memory")
            for path in descriptors {
                var info = stat()
                stat(path, &info)
                inodes.insert(UInt64(info.st_ino))
                // What a compromised QEMU could do with it: open it read-write, write.
                let fd = open(path, O_RDWR)
                #expect(fd >= 0)
                if fd >= 0 {
                    let written = pwrite(fd, "owned", 5, 4096)
                    #expect(written == -1 && errno == EPERM, "wrote \(written) bytes into the template's memory")
                    close(fd)
                }
            }
        }
        // One copy of the memory for both sandboxes: its pages are shared.
        #expect(inodes.count == 1)
        #expect(try MSBHarness.ok(["exec", names[1], "--", "hostname"]) == names[1] + "\n")
    }

    /// CPU time (user + system, clock ticks) QEMU of the sandbox has used so far.
    static func vmmCPUTicks(_ name: String) -> Int {
        guard let pid = MSBHarness.processes(matching: "-name msb-\(name) ").first,
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return -1 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based).
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return -1 }
        return user + system
    }

    @Test func pauseStopsTheCPUAndResumeContinuesWhereItWas() throws {
        let name = MSBHarness.uniqueName("tpl-p")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name])
        try MSBHarness.ok(["exec", name, "--", "sh", "-c", "echo kept > /tmp/state"])
        #expect(try MSBHarness.ok(["pause", name]) == name + "\n")
        #expect(try MSBHarness.listed(name)?["status"] as? String == "paused")
        let before = Self.vmmCPUTicks(name)
        Thread.sleep(forTimeInterval: 2)
        let used = Self.vmmCPUTicks(name) - before
        #expect(before >= 0 && used <= 5, "a paused VM used \(used) ticks in 2s")
        let refused = try MSBHarness.run(["exec", name, "--", "true"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("sandbox \(name) is paused; resume it with 'msb resume \(name)'"), "\(refused.stderr)")
        // Pausing twice is no error; resuming brings back the same machine.
        try MSBHarness.ok(["pause", name])
        #expect(try MSBHarness.ok(["resume", name]) == name + "\n")
        #expect(try MSBHarness.listed(name)?["status"] as? String == "running")
        #expect(try MSBHarness.ok(["exec", name, "--", "cat", "/tmp/state"]) == "kept\n")
        // A paused sandbox still stops cleanly.
        try MSBHarness.ok(["pause", name])
        #expect(try MSBHarness.ok(["stop", name]) == name + "\n")
        #expect(try MSBHarness.listed(name)?["status"] as? String == "stopped")
        let stopped = try MSBHarness.run(["resume", name])
        #expect(stopped.status == 1)
        #expect(stopped.stderr == "error: failed to resume: sandbox \(name) is stopped\n  → start it with 'msb start \(name)'\n")
    }

    @Test func twentySandboxesFromOneTemplateAllAnswer() throws {
        let names = (1...20).map { "tpl-m\($0)-\(getpid() % 10_000)" }
        defer { _ = try? MSBHarness.run(["rm", "-f"] + names) }
        for name in names { try MSBHarness.ok(["create", "--name", name, "--memory", "256M"]) }
        let statuses = StatusBox()
        DispatchQueue.concurrentPerform(iterations: names.count) { index in
            let result = try? MSBHarness.run(["exec", names[index], "--", "hostname"])
            statuses.set(index, result?.out == names[index] + "\n" ? 0 : 1)
        }
        #expect(statuses.all(count: names.count) == Array(repeating: 0, count: names.count))
        #expect(Set(try names.map(Self.boot)).count == 1)
    }
}

final class StatusBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Int32] = [:]
    func set(_ index: Int, _ value: Int32) { lock.withLock { values[index] = value } }
    func all(count: Int) -> [Int32] { lock.withLock { (0..<count).map { values[$0] ?? -1 } } }
}
