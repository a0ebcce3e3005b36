import Foundation
import Testing

/// The offline images (built once per run with mmdebstrap from Debian's archive),
/// persistent root disks, and the code REPL on real sandboxes.
@Suite(.serialized) struct ImageTests {
    /// Builds python and node once for the whole run.
    static let built: Bool = {
        let result = try? MSBHarness.run(["image", "build", "python", "node"])
        return result?.status == 0
    }()

    static let python: String = {
        _ = built
        let name = "py-\(getpid())"
        _ = try? MSBHarness.run(["create", "--name", name, "--image", "python"])
        return name
    }()

    static let node: String = {
        _ = built
        let name = "node-\(getpid())"
        _ = try? MSBHarness.run(["create", "--name", name, "--image", "microsandbox/node"])
        return name
    }()

    func repl(_ name: String, _ code: String, _ extra: [String] = []) throws -> MSBResult {
        try MSBHarness.run(["repl", name, "--no-tty"] + extra, stdin: Data(code.utf8))
    }

    @Test func imagesAreListedWithDigests() throws {
        #expect(Self.built)
        _ = Self.python  // a sandbox that uses the python image
        let json = try MSBHarness.ok(["image", "ls", "--format", "json"])
        let images = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
        let byName = Dictionary(uniqueKeysWithValues: images.compactMap { image in (image["name"] as? String).map { ($0, image) } })
        #expect(byName["base"]?["kind"] as? String == "builtin")
        for name in ["python", "node"] {
            #expect((byName[name]?["digest"] as? String)?.hasPrefix("sha256:") == true)
            #expect((byName[name]?["size"] as? Int ?? 0) > 50_000_000)
        }
        // A second build is cached.
        let again = try MSBHarness.run(["image", "build", "python"])
        #expect(again.status == 0)
        #expect(again.stderr.contains("already built"))
        let base = try MSBHarness.run(["image", "rm", "base"])
        #expect(base.status == 2)
        #expect(base.stderr == "error: the base image is built in and cannot be removed\n")
        let inUse = try MSBHarness.run(["image", "rm", "python"])
        #expect(inUse.status == 1)
        #expect(inUse.stderr.hasPrefix("error: image python is used by sandboxes: "))
        let missing = try MSBHarness.run(["image", "rm", "nope"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("error: image not found: nope\n"))
    }

    @Test func pythonImageRunsPython() throws {
        #expect(try MSBHarness.ok(["exec", Self.python, "--", "python3", "-c", "print(2+2)"]) == "4\n")
        #expect(try MSBHarness.ok(["exec", Self.python, "--", "pwd"]) == "/root\n")
        #expect(try MSBHarness.listed(Self.python)?["image"] as? String == "python")
        // The SDKs' default name resolved to the offline node image.
        #expect(try MSBHarness.listed(Self.node)?["image"] as? String == "node")
        #expect(try MSBHarness.ok(["exec", Self.node, "--", "node", "-e", "console.log(6*7)"]) == "42\n")
    }

    @Test func filesSurviveStopStartAndAKilledVM() throws {
        let name = MSBHarness.uniqueName("persist")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name, "--image", "python"])
        try MSBHarness.ok(["exec", name, "--", "sh", "-c", "echo keep > /root/f"])
        try MSBHarness.ok(["stop", name])
        try MSBHarness.ok(["start", name])
        #expect(try MSBHarness.ok(["exec", name, "--", "cat", "/root/f"]) == "keep\n")

        // Synced data survives QEMU being killed outright.
        try MSBHarness.ok(["exec", name, "--", "sh", "-c", "echo synced > /root/g && sync"])
        for pid in MSBHarness.processes(matching: "msb-\(name) ") { kill(pid, SIGKILL) }
        var status = ""
        for _ in 0..<100 where status != "crashed" {
            usleep(100_000)
            status = try MSBHarness.listed(name)?["status"] as? String ?? ""
        }
        #expect(status == "crashed")
        #expect((try MSBHarness.listed(name)?["status_reason"] as? String) == "the VM killed by signal 9")
        try MSBHarness.ok(["start", name])
        #expect(try MSBHarness.ok(["exec", name, "--", "cat", "/root/f", "/root/g"]) == "keep\nsynced\n")

        let disk = MSBHarness.home + "/sandboxes/\(name)/disk.qcow2"
        #expect(FileManager.default.fileExists(atPath: disk))
        try MSBHarness.ok(["rm", "-f", name])
        #expect(!FileManager.default.fileExists(atPath: disk))
    }

    @Test func pythonREPLKeepsStateSeparatesStreamsAndFlagsExceptions() throws {
        let name = Self.python
        #expect(try repl(name, "x = 41").status == 0)
        let next = try repl(name, "print(x+1)")
        #expect(next.status == 0)
        #expect(next.out == "42\n")
        #expect(try repl(name, "x * 2").out == "82\n")
        let raised = try repl(name, "import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n1/0")
        #expect(raised.status == 1)
        #expect(raised.out == "to out\n")
        #expect(raised.stderr.hasPrefix("to err\nTraceback (most recent call last):"))
        #expect(raised.stderr.hasSuffix("ZeroDivisionError: division by zero\n"))
        let block = try repl(name, "def twice(v):\n    return v * 2\n\nprint(twice(x))")
        #expect(block.out == "82\n")
    }

    @Test func runawayCodeIsInterruptedAndDeadInterpretersRestart() throws {
        let name = Self.python
        #expect(try repl(name, "kept = 'yes'").status == 0)
        let started = Date()
        let runaway = try repl(name, "while True: pass", ["--timeout", "2s"])
        #expect(runaway.status == 1)
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(runaway.stderr.contains("KeyboardInterrupt"))
        #expect(runaway.stderr.hasSuffix("error: timed out after 2s\n"))
        #expect(try repl(name, "print(kept)").out == "yes\n")

        let died = try repl(name, "import os; os._exit(3)")
        #expect(died.status == 1)
        #expect(died.stderr == "error: the python interpreter exited with status 3; it starts afresh on the next run\n")
        let fresh = try repl(name, "print('kept' in globals())")
        #expect(fresh.out == "False\n")
    }

    @Test func nodeREPLKeepsState() throws {
        let name = Self.node
        #expect(try repl(name, "let y = 20; var z = 1").status == 0)
        #expect(try repl(name, "y + z + 21").out == "42\n")
        let thrown = try repl(name, "console.error('e'); throw new Error('boom')")
        #expect(thrown.status == 1)
        #expect(thrown.stderr.hasPrefix("e\n"))
        #expect(thrown.stderr.contains("Error: boom"))
        // Languages a sandbox lacks, or that msb does not know, are clear errors.
        let missing = try repl(Self.python, "1", ["--lang", "node"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("this sandbox's image has no node; use --image node"))
        let unknown = try repl(name, "1", ["--lang", "ruby"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr == "error: unsupported language 'ruby'\n  → use python or node\n")
    }
}
