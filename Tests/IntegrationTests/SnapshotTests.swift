import Foundation
import Testing

/// Named snapshots of running sandboxes, and forks from them: processes, REPL variables
/// and files are there in every fork, which then go their own ways.
@Suite(.serialized) struct SnapshotTests {
    func repl(_ name: String, _ code: String) throws -> String {
        let result = try MSBHarness.run(["repl", name, "--no-tty"], stdin: Data(code.utf8))
        #expect(result.status == 0, "repl in \(name): \(result.stderr)")
        return result.out
    }

    /// The counter a background loop in the guest keeps writing, read twice a moment apart.
    func counterAdvances(_ name: String) throws -> Bool {
        let out = try MSBHarness.ok(["exec", name, "--", "sh", "-c", "cat /root/counter; sleep 1; cat /root/counter"])
        let values = out.split(separator: "\n").compactMap { Int($0) }
        return values.count == 2 && values[1] > values[0]
    }

    static func snapshots() throws -> [[String: Any]] {
        let json = try MSBHarness.run(["snapshot", "ls", "--format", "json"]).stdout
        return try JSONSerialization.jsonObject(with: json) as? [[String: Any]] ?? []
    }

    @Test func forksHaveTheSourcesProcessesVariablesAndFilesThenDiverge() throws {
        #expect(ImageTests.built)
        let source = MSBHarness.uniqueName("snap-src")
        let snapshot = MSBHarness.uniqueName("snap")
        let forks = [MSBHarness.uniqueName("fork-a"), MSBHarness.uniqueName("fork-b")]
        let grandchild = MSBHarness.uniqueName("fork-c"), second = snapshot + "-2"
        defer {
            _ = try? MSBHarness.run(["rm", "-f", source, grandchild] + forks)
            _ = try? MSBHarness.run(["snapshot", "rm", second, snapshot])
        }
        try MSBHarness.ok(["create", "--name", source, "--image", "python", "-e", "STAGE=one"])
        try MSBHarness.ok(["exec", source, "--", "sh", "-c",
                           "echo base > /root/note; nohup sh -c 'i=0; while true; do i=$((i+1)); echo $i > /root/counter; sleep 0.2; done' >/dev/null 2>&1 &"])
        #expect(try repl(source, "x = 41\nprint('set')\n") == "set\n")

        #expect(try MSBHarness.ok(["snapshot", "create", source, snapshot]) == "\(snapshot)\n")
        // The source runs on, as it was.
        #expect(try counterAdvances(source))
        #expect(try repl(source, "print(x)\n") == "41\n")
        let listed = try Self.snapshots().first { $0["name"] as? String == snapshot }
        #expect(listed?["source"] as? String == source)
        #expect(listed?["image"] as? String == "python")

        for fork in forks {
            try MSBHarness.ok(["create", "--name", fork, "--from", snapshot])
            #expect(try TemplateTests.boot(fork) == "snapshot \(snapshot)")
            #expect(try counterAdvances(fork), "the background loop does not run in \(fork)")
            #expect(try repl(fork, "print(x + 1)\n") == "42\n")
            #expect(try MSBHarness.ok(["exec", fork, "--", "sh", "-c", "hostname; cat /root/note; echo $STAGE"]) == "\(fork)\nbase\none\n")
        }
        // They diverge: what one fork does is not in the other, nor in the source.
        #expect(try repl(forks[0], "x = 100\nprint(x)\n") == "100\n")
        try MSBHarness.ok(["exec", forks[0], "--", "sh", "-c", "echo mine > /root/note"])
        #expect(try repl(forks[1], "print(x)\n") == "41\n")
        #expect(try MSBHarness.ok(["exec", forks[1], "--", "cat", "/root/note"]) == "base\n")
        #expect(try MSBHarness.ok(["exec", source, "--", "cat", "/root/note"]) == "base\n")
        #expect(try repl(source, "print(x)\n") == "41\n")

        // A snapshot of a fork lies on the first snapshot's disk.
        try MSBHarness.ok(["snapshot", "create", forks[0], second])
        try MSBHarness.ok(["create", "--name", grandchild, "--from", second])
        #expect(try MSBHarness.ok(["exec", grandchild, "--", "cat", "/root/note"]) == "mine\n")
        #expect(try repl(grandchild, "print(x)\n") == "100\n")

        // A fork that stops and starts again keeps its files (it boots from the template).
        try MSBHarness.ok(["stop", forks[0]])
        try MSBHarness.ok(["start", forks[0]])
        #expect(try TemplateTests.boot(forks[0]).hasPrefix("template "))
        #expect(try MSBHarness.ok(["exec", forks[0], "--", "cat", "/root/note"]) == "mine\n")

        // A snapshot something lies on stays.
        let inUse = try MSBHarness.run(["snapshot", "rm", snapshot])
        #expect(inUse.status == 1)
        #expect(inUse.stderr.hasPrefix("error: snapshot \(snapshot) is in use by "), "\(inUse.stderr)")
        try MSBHarness.ok(["rm", "-f", grandchild])
        try MSBHarness.ok(["snapshot", "rm", second])
        try MSBHarness.ok(["rm", "-f"] + forks)
        try MSBHarness.ok(["snapshot", "rm", snapshot])
        #expect(try Self.snapshots().contains { $0["name"] as? String == snapshot } == false)
        #expect(!FileManager.default.fileExists(atPath: MSBHarness.home + "/snapshots/" + snapshot))
    }

    @Test func refusalsSayWhy() throws {
        let name = MSBHarness.uniqueName("snap-err")
        let snapshot = MSBHarness.uniqueName("snap-e")
        defer {
            _ = try? MSBHarness.run(["rm", "-f", name])
            _ = try? MSBHarness.run(["snapshot", "rm", snapshot])
        }
        try MSBHarness.ok(["create", "--name", name, "--no-start"])
        let stopped = try MSBHarness.run(["snapshot", "create", name, snapshot])
        #expect(stopped.status == 1)
        #expect(stopped.stderr.hasPrefix("error: failed to snapshot: sandbox \(name) is created\n"), "\(stopped.stderr)")

        try MSBHarness.ok(["start", name])
        try MSBHarness.ok(["snapshot", "create", name, snapshot])
        let again = try MSBHarness.run(["snapshot", "create", name, snapshot])
        #expect(again.status == 1)
        #expect(again.stderr.hasPrefix("error: snapshot \(snapshot) already exists\n"), "\(again.stderr)")

        let missing = try MSBHarness.run(["create", "--name", name + "-x", "--from", "no-such-snapshot"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: snapshot not found: no-such-snapshot\n  → run 'msb snapshot ls' to see snapshots\n")
        #expect(try MSBHarness.listed(name + "-x") == nil)
    }

    /// Through `msb server`: the same commands, a fork with the source's memory, no host
    /// paths in what clients see, and the namespace's snapshot quota.
    @Test func remoteSnapshotsForkAndCountAgainstTheQuota() throws {
        let server = try TestServer(name: "srv-snap", options: ["--max-snapshots-per-namespace", "1"], sharedImages: false)
        defer { server.stop() }
        let key = try server.keygen()
        let source = MSBHarness.uniqueName("rsrc"), fork = MSBHarness.uniqueName("rfork")
        defer { _ = try? server.msb(["rm", "-f", source, fork], key: key) }
        #expect(try server.msb(["create", "--name", source], key: key).status == 0)
        #expect(try server.msb(["exec", source, "--", "sh", "-c", "echo remote > /tmp/mark"], key: key).status == 0)
        let created = try server.msb(["snapshot", "create", source, "rs1"], key: key)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.out == "rs1\n")

        let over = try server.msb(["snapshot", "create", source, "rs2"], key: key)
        #expect(over.status == 1)
        #expect(over.stderr.hasPrefix("error: namespace limit reached: at most 1 snapshots may be kept in namespace default\n"), "\(over.stderr)")

        let listed = try server.msb(["snapshot", "ls", "--format", "json"], key: key)
        #expect(listed.status == 0)
        #expect(!listed.out.contains(server.home), "a host path reached the client: \(listed.out)")
        let entries = try JSONSerialization.jsonObject(with: listed.stdout) as? [[String: Any]] ?? []
        #expect(entries.map { $0["name"] as? String } == ["rs1"])
        #expect(entries.first?["source"] as? String == source)

        #expect(try server.msb(["create", "--name", fork, "--from", "rs1"], key: key).status == 0)
        let mark = try server.msb(["exec", fork, "--", "cat", "/tmp/mark"], key: key)
        #expect(mark.out == "remote\n", "\(mark.stderr)")
        #expect(try server.msb(["rm", "-f", fork], key: key).status == 0)
        #expect(try server.msb(["snapshot", "rm", "rs1"], key: key).status == 0)
        #expect(try server.msb(["snapshot", "ls", "-q"], key: key).out == "")
    }
}
