import Foundation
import Testing

/// QEMU runs under its own seccomp filter with no_new_privs, opens no file by path, and
/// (when msb runs as root, as in CI) as an unprivileged uid of its own per sandbox.
@Suite struct ConfinementTests {
    @Test func qemuIsConfined() throws {
        let name = SharedSandbox.name
        #expect(try MSBHarness.ok(["exec", name, "--", "true"]) == "")
        let pids = MSBHarness.processes(matching: "-name msb-\(name) ")
        let pid = try #require(pids.first, "no QEMU for \(name)")
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ key: String) -> [String] {
            status.split(separator: "\n").first { $0.hasPrefix(key + ":") }?.split(separator: "\t").dropFirst().map(String.init) ?? []
        }
        #expect(field("Seccomp") == ["2"], "QEMU has no seccomp filter")
        #expect(field("NoNewPrivs") == ["1"])
        let cmdline = String(decoding: try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")).map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        #expect(cmdline.contains("-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"))
        #expect(!cmdline.contains(MSBHarness.home), "QEMU was given a path under MSB_HOME: \(cmdline)")
        if getuid() == 0 {
            let uids = field("Uid"), gids = field("Gid")
            #expect(uids.count == 4 && !uids.contains("0"), "QEMU runs with uids \(uids)")
            #expect(gids.count == 4 && !gids.contains("0"), "QEMU runs with gids \(gids)")
            #expect(field("Groups").joined().trimmingCharacters(in: .whitespaces).isEmpty)
        }
    }
}
