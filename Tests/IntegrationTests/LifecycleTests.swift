import Foundation
import Testing

/// create / stop / start / rm / run on real microVMs, and the truth after crashes.
@Suite(.serialized) struct LifecycleTests {
    @Test func createListStopStartRemove() throws {
        let name = MSBHarness.uniqueName("life")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        #expect(try MSBHarness.ok(["create", "--name", name, "--memory", "256M", "--cpus", "2", "-e", "MODE=test"]) == "\(name)\n")

        let table = try MSBHarness.ok(["ls"])
        #expect(table.hasPrefix("NAME"))
        #expect(table.split(separator: "\n").first?.split(separator: " ", omittingEmptySubsequences: true)
                == ["NAME", "IMAGE", "STATUS", "CPUS", "MEMORY", "CREATED"])
        let row = table.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        #expect(row?.split(separator: " ", omittingEmptySubsequences: true).prefix(5) == [Substring(name), "base", "running", "2", "256M"])

        let entry = try MSBHarness.listed(name)
        #expect(entry?["status"] as? String == "running")
        #expect(entry?["memory_mib"] as? Int == 256)
        #expect(entry?["cpus"] as? Int == 2)
        #expect(entry?["image"] as? String == "base")
        // The sandbox's -e default reaches every exec; the guest sees its cpus and memory.
        #expect(try MSBHarness.ok(["exec", name, "--", "sh", "-c", "echo $MODE; nproc"]) == "test\n2\n")

        #expect(try MSBHarness.ok(["stop", name]) == "\(name)\n")
        #expect(try MSBHarness.listed(name)?["status"] as? String == "stopped")
        #expect(try MSBHarness.listed(name)?["status_reason"] as? String == "stopped by user")
        let stoppedExec = try MSBHarness.run(["exec", name, "--", "true"])
        #expect(stoppedExec.status == 1)
        #expect(stoppedExec.stderr == "error: failed to exec: sandbox \(name) is stopped\n  → start it with 'msb start \(name)'\n")

        #expect(try MSBHarness.ok(["start", name]) == "\(name)\n")
        #expect(try MSBHarness.listed(name)?["status"] as? String == "running")
        #expect(try MSBHarness.ok(["exec", name, "--", "echo", "again"]) == "again\n")
        // start of a running sandbox is a no-op.
        #expect(try MSBHarness.ok(["start", name]) == "\(name)\n")

        let refused = try MSBHarness.run(["rm", name])
        #expect(refused.status == 1)
        #expect(refused.stderr == "error: failed to remove: sandbox \(name) is running\n  → stop it first with 'msb stop \(name)', or use 'msb rm -f \(name)'\n")
        #expect(try MSBHarness.ok(["rm", "-f", name]) == "\(name)\n")
        #expect(try MSBHarness.listed(name) == nil)
        #expect(!FileManager.default.fileExists(atPath: MSBHarness.home + "/sandboxes/\(name)"))
        #expect(MSBHarness.processes(matching: "msb-\(name) ").isEmpty)
    }

    @Test func forceStopKillsAtOnce() throws {
        let name = MSBHarness.uniqueName("force")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name])
        try MSBHarness.ok(["stop", "--force", name])
        #expect(try MSBHarness.listed(name)?["status"] as? String == "stopped")
        #expect(MSBHarness.processes(matching: "msb-\(name) ").isEmpty)
        try MSBHarness.ok(["rm", name])
    }

    @Test func runIsCreateExecRemove() throws {
        // Other suites create sandboxes meanwhile: look only for what run would have left,
        // a generated name (adjective-noun-hex) or the one given.
        let generated = try Regex("^[a-z]+-[a-z]+-[0-9a-f]+$")
        let before = Set(try MSBHarness.ok(["ls", "-q"]).split(separator: "\n").map(String.init))
        let result = try MSBHarness.run(["run", "--", "echo", "hi"])
        #expect(result.status == 0)
        #expect(result.out == "hi\n")
        let named = MSBHarness.uniqueName("run")
        let failing = try MSBHarness.run(["run", "--name", named, "--", "sh", "-c", "exit 3"])
        #expect(failing.status == 3)
        let after = Set(try MSBHarness.ok(["ls", "-q"]).split(separator: "\n").map(String.init))
        let left = after.subtracting(before).filter { $0 == named || $0.wholeMatch(of: generated) != nil }
        #expect(left.isEmpty, "run left sandboxes behind: \(left)")
    }

    @Test func threeSandboxesAtOnce() throws {
        let names = (0..<3).map { MSBHarness.uniqueName("trio\($0)") }
        defer { for name in names { _ = try? MSBHarness.run(["rm", "-f", name]) } }
        let results = ResultsBox()
        DispatchQueue.concurrentPerform(iterations: 3) { i in
            results.set(i, try? MSBHarness.run(["create", "--name", names[i]]))
        }
        for i in 0..<3 { #expect(results.get(i)?.status == 0, "create \(names[i]): \(results.get(i)?.stderr ?? "")") }
        for name in names {
            #expect(try MSBHarness.ok(["exec", name, "--", "hostname"]) == "\(name)\n")
        }
        #expect(try MSBHarness.ok(["rm", "-f"] + names) == names.map { "\($0)\n" }.joined())
    }

    @Test func waitReturnsWhenAnotherProcessStopsTheSandbox() throws {
        let name = MSBHarness.uniqueName("wait")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name])
        let timedOut = try MSBHarness.run(["wait", "--timeout", "1s", name])
        #expect(timedOut.status == 124)
        #expect(timedOut.stderr == "error: timed out after 1s waiting for sandbox \(name) to stop\n  → stop it with 'msb stop \(name)', or wait longer with --timeout\n")

        let waiter = ResultsBox()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            waiter.set(0, try? MSBHarness.run(["wait", "--timeout", "120s", name]))
            done.signal()
        }
        // Still waiting while the sandbox runs.
        #expect(done.wait(timeout: .now() + 1) == .timedOut)
        try MSBHarness.ok(["stop", name])
        #expect(done.wait(timeout: .now() + 30) == .success, "msb wait did not return after msb stop")
        #expect(waiter.get(0)?.status == 0)
        #expect(waiter.get(0)?.out == "")
        #expect(waiter.get(0)?.stderr == "")
        // A stopped sandbox is answered at once; inspect shows how it ended.
        #expect(try MSBHarness.run(["wait", name]).status == 0)
        let inspected = try JSONSerialization.jsonObject(with: Data(MSBHarness.ok(["inspect", name]).utf8)) as? [String: Any]
        #expect(inspected?["status"] as? String == "stopped")
        #expect(inspected?["status_reason"] as? String == "stopped by user")
    }

    @Test func killedSupervisorIsReportedAndCleanedUp() throws {
        let name = MSBHarness.uniqueName("crash")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name])
        let supervisors = MSBHarness.processes(matching: "_supervise \(name)")
        #expect(supervisors.count == 1)
        for pid in supervisors { kill(pid, SIGKILL) }
        // ls tells the truth at once: never "running".
        var status = try MSBHarness.listed(name)?["status"] as? String
        #expect(status == "crashed")
        #expect((try MSBHarness.listed(name)?["status_reason"] as? String)?.contains("exited unexpectedly") == true)
        let wait = try MSBHarness.run(["wait", name])
        #expect(wait.status == 4)
        #expect(wait.stderr.hasPrefix("error: sandbox \(name) crashed: supervisor process (pid "))
        // QEMU does not outlive its supervisor.
        let deadline = Date().addingTimeInterval(10)
        while !MSBHarness.processes(matching: "msb-\(name) ").isEmpty && Date() < deadline { usleep(50_000) }
        #expect(MSBHarness.processes(matching: "msb-\(name) ").isEmpty)
        let exec = try MSBHarness.run(["exec", name, "--", "true"])
        #expect(exec.stderr.hasPrefix("error: failed to exec: sandbox \(name) is crashed"))
        // A crashed sandbox can be started again.
        try MSBHarness.ok(["start", name])
        status = try MSBHarness.listed(name)?["status"] as? String
        #expect(status == "running")
        try MSBHarness.ok(["rm", "-f", name])
        #expect(try MSBHarness.listed(name) == nil)
    }

    @Test func maxDurationStopsTheSandbox() throws {
        let name = MSBHarness.uniqueName("ttl")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name, "--max-duration", "2s"])
        let deadline = Date().addingTimeInterval(60)
        var entry = try MSBHarness.listed(name)
        while entry?["status"] as? String != "stopped" && Date() < deadline {
            usleep(250_000)
            entry = try MSBHarness.listed(name)
        }
        #expect(entry?["status"] as? String == "stopped")
        #expect(entry?["status_reason"] as? String == "stopped: maximum duration reached")
    }
}
