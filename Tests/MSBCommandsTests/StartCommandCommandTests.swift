import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// `--start-command`, `--script`, `--shell` on create; `exec --script`; `msb logs`: what
/// reaches the backend and the usage errors, with the fake backend.
@Suite struct StartCommandCommandTests {
    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        StartOptionCommandTests().run(arguments, backend)
    }

    @Test func createStoresTheStartCommandScriptsAndShell() {
        let tests = StartOptionCommandTests()
        let config = tests.created(["--start-command", "python -m http.server", "--script", "build=make all",
                                    "--script", "test=make test \"$@\"", "--script", "build=make", "--shell", "/bin/bash"])
        #expect(config?.startCommand == "python -m http.server")
        #expect(config?.scripts == ["build": "make", "test": "make test \"$@\""])
        #expect(config?.shell == "/bin/bash")
        let plain = tests.created([])
        #expect(plain?.startCommand == nil && plain?.scripts == nil && plain?.shell == nil)
    }

    @Test func hostileScriptNamesAndShellsAreUsageErrors() {
        let tests = StartOptionCommandTests()
        for name in ["../x", "a/b", "..", ".", "", "a b", "x\u{0}y", String(repeating: "s", count: 65), "ü"] {
            let error = tests.usageError(["create", "--script", "\(name)=true"])
            #expect(error?.hasPrefix("error: invalid script name") == true, "\(name)")
        }
        #expect(tests.usageError(["create", "--script", "noequals"])?.hasPrefix("error: invalid --script 'noequals'") == true)
        #expect(tests.usageError(["create", "--script", "empty="]) != nil)
        #expect(tests.usageError(["create", "--shell", "bash"])?.hasPrefix("error: invalid shell 'bash'") == true)
        #expect(tests.usageError(["create", "--start-command", ""]) != nil)
        #expect(tests.usageError(["create", "--start-command", String(repeating: "x", count: 64 * 1024 + 1)]) != nil)
        #expect(tests.created(["--script", String(repeating: "s", count: 64) + "=true", "--script", "a.b_c-1=true"])?.scripts?.count == 2)
    }

    @Test func execScriptRunsTheScriptWithItsArguments() {
        var info = FakeBackend.info("web", .running)
        info.config.scripts = ["test": "make test \"$@\""]
        let backend = FakeBackend(sandboxes: [info])
        _ = run(["exec", "web", "--script", "test", "--", "-v", "a b"], backend)
        #expect(backend.execArgvs == [["/bin/sh", "-c", "make test \"$@\"", "test", "-v", "a b"]])
        _ = run(["exec", "--script", "test", "web"], backend)
        #expect(backend.execArgvs.last == ["/bin/sh", "-c", "make test \"$@\"", "test"])
    }

    @Test func anUnknownScriptNamesTheKnownOnes() {
        var info = FakeBackend.info("web", .running)
        info.config.scripts = ["test": "true", "build": "true"]
        let backend = FakeBackend(sandboxes: [info, FakeBackend.info("bare", .running)])
        let result = run(["exec", "web", "--script", "deploy"], backend)
        #expect(result.status == 1)
        #expect(result.err == "error: sandbox web has no script 'deploy'\n  → its scripts: build, test\n")
        #expect(run(["exec", "bare", "--script", "x"], backend).err.contains("it has no scripts"))
        #expect(run(["exec", "web", "--script", "../x"], backend).status == 2)
        #expect(backend.execArgvs.isEmpty)
    }

    @Test func logsPrintsTheLogOrItsLastLines() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        backend.logText["web"] = "[msb] exec started\none\ntwo\n[msb] exec exited with status 3\n"
        #expect(run(["logs", "web"], backend).out == "[msb] exec started\none\ntwo\n[msb] exec exited with status 3\n")
        #expect(run(["logs", "-n", "2", "web"], backend).out == "two\n[msb] exec exited with status 3\n")
        #expect(run(["logs", "--tail", "0", "web"], backend).out == "")
        #expect(run(["logs", "--tail", "x", "web"], backend).status == 2)
        #expect(run(["logs", "gone"], backend).status == 1)
        // The fake backend is not this host's: --follow is refused, not ignored.
        #expect(run(["logs", "-f", "web"], backend).err.hasPrefix("error: msb logs --follow works on this host only"))
    }

    @Test func lastLinesCountsALastLineWithoutNewline() {
        let log = SandboxLog(bytes: Array("a\nb\nc".utf8), truncated: false)
        #expect(String(decoding: log.lastLines(2), as: UTF8.self) == "b\nc")
        #expect(String(decoding: log.lastLines(5), as: UTF8.self) == "a\nb\nc")
    }
}
