import Foundation
import Glibc
import Testing

/// Volumes end to end: real virtiofsd, real QEMU vhost-user-fs devices, real guests.
/// Sandboxes with volumes boot cold (QEMU 7.2 cannot save a virtio-fs device).
@Suite(.serialized) struct VolumeTests {
    static func scratch() throws -> String {
        let directory = MSBHarness.home + "/volume-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    static func owner(_ path: String) -> uid_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_uid : nil
    }

    /// virtiofsd processes serving sandbox `name` (their source is in its directory).
    static func virtiofsdCount(of name: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { entry in
            guard Int32(entry) != nil, let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return false }
            let command = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return command.hasPrefix("/usr/lib/qemu/virtiofsd") && command.contains("/sandboxes/\(name)/volumes/")
        }.count
    }

    @Test func hostDirectoriesAreSharedAndReadOnlyIsTheHostsToEnforce() throws {
        let directory = try Self.scratch()
        let name = MSBHarness.uniqueName("vol-host")
        defer {
            _ = try? MSBHarness.run(["rm", "-f", name])
            try? FileManager.default.removeItem(atPath: directory)
        }
        try FileManager.default.createDirectory(atPath: directory + "/shared", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/readonly", withIntermediateDirectories: true)
        try "from the host\n".write(toFile: directory + "/shared/host.txt", atomically: true, encoding: .utf8)
        try "kept\n".write(toFile: directory + "/readonly/kept.txt", atomically: true, encoding: .utf8)
        let mountsBefore = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)

        try MSBHarness.ok(["create", "--name", name, "-v", directory + "/shared:/data", "-v", directory + "/readonly:/ro:ro"])
        let boot = try TemplateTests.boot(name)
        #expect(boot.hasPrefix("cold boot: it has volumes"), "\(boot)")
        // A host file is visible in the guest; the guest's write is visible on the host,
        // owned by the guest's uid (identity mapping: the guest's root is root).
        #expect(try MSBHarness.ok(["exec", name, "--", "cat", "/data/host.txt"]) == "from the host\n")
        try MSBHarness.ok(["exec", name, "--", "sh", "-c", "echo from the guest > /data/guest.txt"])
        #expect(try String(contentsOfFile: directory + "/shared/guest.txt", encoding: .utf8) == "from the guest\n")
        #expect(Self.owner(directory + "/shared/guest.txt") == 0)

        // :ro: the guest's root cannot write, not even after remounting read-write in its kernel.
        #expect(try MSBHarness.ok(["exec", name, "--", "cat", "/ro/kept.txt"]) == "kept\n")
        let refused = try MSBHarness.run(["exec", name, "--", "sh", "-c",
                                          "touch /ro/new; mount -o remount,rw /ro; echo x > /ro/new; rm -f /ro/kept.txt"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("Read-only file system"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/readonly/new"))
        #expect(FileManager.default.fileExists(atPath: directory + "/readonly/kept.txt"))

        // The file servers belong to the sandbox: gone when it stops, and no mount stays behind.
        #expect(Self.virtiofsdCount(of: name) >= 2)
        try MSBHarness.ok(["stop", name])
        #expect(try NetworkTests.eventually(10) { Self.virtiofsdCount(of: name) == 0 })
        #expect(try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) == mountsBefore)
    }

    @Test func aNamedVolumeOutlivesItsSandboxAndIsShared() throws {
        let volume = MSBHarness.uniqueName("data")
        let first = MSBHarness.uniqueName("vol-a"), second = MSBHarness.uniqueName("vol-b"), third = MSBHarness.uniqueName("vol-c")
        defer {
            _ = try? MSBHarness.run(["rm", "-f", first, second, third])
            _ = try? MSBHarness.run(["volume", "rm", volume])
        }
        try MSBHarness.ok(["volume", "create", volume])
        try MSBHarness.ok(["create", "--name", first, "-v", "\(volume):/data"])
        try MSBHarness.ok(["exec", first, "--", "sh", "-c", "echo written by the first > /data/note"])
        try MSBHarness.ok(["rm", "-f", first])

        // The next sandbox sees it; two at once share it.
        try MSBHarness.ok(["create", "--name", second, "-v", "\(volume):/data"])
        #expect(try MSBHarness.ok(["exec", second, "--", "cat", "/data/note"]) == "written by the first\n")
        try MSBHarness.ok(["create", "--name", third, "-v", "\(volume):/shared:ro"])
        try MSBHarness.ok(["exec", second, "--", "sh", "-c", "echo live > /data/live"])
        #expect(try MSBHarness.ok(["exec", third, "--", "cat", "/shared/live"]) == "live\n")

        // Not removable while a sandbox uses it.
        let inUse = try MSBHarness.run(["volume", "rm", volume])
        #expect(inUse.status != 0)
        #expect(inUse.stderr.contains("in use"), "\(inUse.stderr)")
        #expect(try MSBHarness.ok(["volume", "ls"]).contains(volume))
    }

    /// Through a server: an SDK's `volumes` inside `--allow-volume` are mounted, a host path
    /// outside it is 403 before anything starts, and named volumes are per namespace.
    @Test func aServerSharesOnlyWhatItAllowsAndNamespacesKeepTheirVolumes() throws {
        let allowed = try Self.scratch(), outside = try Self.scratch()
        try "allowed\n".write(toFile: allowed + "/f", atomically: true, encoding: .utf8)
        let server = try TestServer(name: "srvvol-\(getpid() % 10_000)", options: ["--dev", "--allow-volume", allowed])
        let sdk = MSBHarness.uniqueName("rvol"), refusedName = MSBHarness.uniqueName("rvol-no")
        defer {
            for name in [sdk, refusedName] { _ = try? server.msb(["rm", "-f", name], key: nil) }
            server.stop()
            try? FileManager.default.removeItem(atPath: allowed)
            try? FileManager.default.removeItem(atPath: outside)
        }
        let refused = try server.rpc("sandbox.start", ["sandbox": refusedName, "namespace": "default",
                                                        "config": ["volumes": ["\(outside):/data"]]], key: nil)
        #expect(refused.status == 403, "\(refused.json)")
        #expect(try server.msb(["ls", "-q"], key: nil).out.split(separator: "\n").contains { $0 == refusedName } == false)
        let started = try server.rpc("sandbox.start", ["sandbox": sdk, "namespace": "default",
                                                        "config": ["volumes": ["\(allowed):/data:ro"]]], key: nil)
        #expect(started.status == 200 && started.json["error"] == nil, "\(started.json)")
        #expect(try server.msb(["exec", sdk, "--", "cat", "/data/f"], key: nil).out == "allowed\n")

        // A volume of namespace a is not namespace b's: b neither lists nor finds it.
        #expect(try server.msb(["--namespace", "team-a", "volume", "create", "shared"], key: nil).status == 0)
        #expect(try server.msb(["--namespace", "team-a", "volume", "ls"], key: nil).out.contains("shared"))
        #expect(try server.msb(["--namespace", "team-b", "volume", "ls"], key: nil).out.contains("shared") == false)
        let missing = try server.msb(["--namespace", "team-b", "volume", "inspect", "shared"], key: nil)
        #expect(missing.status != 0 && missing.stderr.contains("not found"), "\(missing.stderr)")
    }

    /// virtiofsd is the supervisor's to own: if it dies, the sandbox ends as crashed, saying why.
    @Test func aVolumeServerThatDiesCrashesItsSandbox() throws {
        let directory = try Self.scratch()
        let name = MSBHarness.uniqueName("vol-crash")
        defer {
            _ = try? MSBHarness.run(["rm", "-f", name])
            try? FileManager.default.removeItem(atPath: directory)
        }
        try MSBHarness.ok(["create", "--name", name, "-v", directory + ":/data"])
        let supervisor = try #require(NetworkTests.supervisor(of: name))
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let server = try #require(entries.compactMap { Int32($0) }.first { pid in
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return status.contains("PPid:\t\(supervisor)\n") && status.hasPrefix("Name:\tvirtiofsd")
        })
        kill(server, SIGKILL)
        #expect(try NetworkTests.eventually(20) { (try MSBHarness.listed(name)?["status"] as? String) == "crashed" })
        let reason = try MSBHarness.listed(name)?["status_reason"] as? String ?? ""
        #expect(reason.contains("the file server of the volume at /data (virtiofsd)"), "\(reason)")
    }
}
