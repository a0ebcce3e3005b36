import Foundation
import Testing

/// `msb shell` and `exec -t` on a real pseudo-terminal (driven by Fixtures/pty_session.py),
/// and the piped line mode.
@Suite(.serialized) struct ShellTests {
    let name = SharedSandbox.name
    static let driver = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/pty_session.py"

    struct Session: Decodable {
        let exit: Int32?
        let output: String
        let restored: Bool
        let failed: [PTYStep]?
    }
    enum PTYStep: Decodable {
        case text(String), number(Double)
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s) } else { self = .number(try c.decode(Double.self)) }
        }
    }

    /// Runs msb on a PTY through the steps; see the driver for their form.
    func onTerminal(_ arguments: [String], steps: String, env: [String: String] = [:]) throws -> Session {
        try Self.onTerminal(arguments, steps: steps, env: env)
    }

    static func onTerminal(_ arguments: [String], steps: String, env: [String: String] = [:]) throws -> Session {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", driver, steps, "--", MSBHarness.binary] + arguments
        process.environment = MSBHarness.environment(["TERM": "xterm"].merging(env) { $1 })
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return try JSONDecoder().decode(Session.self, from: data)
    }

    @Test func ptyShellRunsResizesInterruptsAndExits() throws {
        let session = try onTerminal(["shell", name], steps: """
            [["expect","# ",30],["send","stty size\\r"],["expect","24 80",10],
             ["resize",30,100],["sleep",0.3],["send","stty size\\r"],["expect","30 100",10],
             ["send","sleep 30\\r"],["sleep",1],["send","\\u0003"],["expect","# ",10],
             ["send","tty; exit 3\\r"]]
            """)
        #expect(session.failed == nil, "step failed; output: \(session.output)")
        #expect(session.output.contains("/dev/pts/"))
        #expect(session.exit == 3)
        #expect(session.restored, "the host terminal was not restored")
    }

    @Test func inputTypedBeforeTheShellStartsIsKept() throws {
        // Sent at once, before msb puts the terminal in raw mode: a flush there would drop it.
        let session = try onTerminal(["shell", name], steps: """
            [["send","echo typed-$((40+2)); exit 3\\r"],["expect","typed-42",30]]
            """)
        #expect(session.failed == nil, "step failed; output: \(session.output)")
        #expect(session.exit == 3)
        #expect(session.restored, "the host terminal was not restored")
    }

    @Test func fullScreenProgramAndDetachKeys() throws {
        // top draws with escape sequences; q quits it. Then Ctrl-] detaches from a sleep.
        let top = try onTerminal(["exec", "-t", name, "--", "top"], steps: """
            [["expect","Mem:",20],["send","q"]]
            """)
        #expect(top.failed == nil, "output: \(top.output)")
        #expect(top.exit == 0)
        #expect(top.restored)

        let proof = "/tmp/detach-proof-\(UInt32.random(in: 0...UInt32.max))"
        let detached = try onTerminal(["exec", "-t", name, "--", "sh", "-c", "echo ready; sleep 2; echo alive > \(proof)"], steps: """
            [["expect","ready",20],["send","\\u001d"]]
            """)
        #expect(detached.exit == 0)
        #expect(detached.output.contains("detached"))
        #expect(detached.restored)
        // The detached process keeps running: it finishes its work after msb left.
        var proven = ""
        for _ in 0..<40 where proven != "alive\n" {
            usleep(250_000)
            proven = try MSBHarness.run(["exec", name, "--", "cat", proof]).out
        }
        #expect(proven == "alive\n")
    }

    @Test func replKeepsStateInterruptsAndWritesHistory() throws {
        let session = try onTerminal(["shell", name, "--repl"], steps: """
            [["expect","\(name):/# ",30],["send","cd /tmp\\r"],["expect","\(name):/tmp# ",10],
             ["send","sleep 30\\r"],["sleep",1],["send","\\u0003"],["expect","\(name):/tmp# ",10],
             ["send","echo status=$?\\r"],["expect","status=130",10],["sleep",0.3],["send","\\u0004"]]
            """)
        #expect(session.failed == nil, "output: \(session.output)")
        #expect(session.exit == 0)
        #expect(session.restored)
        let history = try String(contentsOfFile: MSBHarness.home + "/history/\(name).shell", encoding: .utf8)
        #expect(history.contains("cd /tmp\n"))
        #expect(history.contains("echo status=$?\n"))
    }

    @Test func pipedLinesRunInOneSession() throws {
        let result = try MSBHarness.run(["shell", name], stdin: Data("cd /tmp\npwd\nexport A=5\necho $A\nfalse\n".utf8))
        #expect(result.out == "/tmp\n5\n")
        #expect(result.status == 1)  // the last line's status
        let exited = try MSBHarness.run(["shell", name], stdin: Data("echo \"unbalanced\nexit 4\necho never\n".utf8))
        #expect(exited.status == 4)
        #expect(!exited.out.contains("never"))
        #expect(exited.stderr.contains("unterminated quoted string"))
    }

    @Test func ttyNeedsATerminal() throws {
        let result = try MSBHarness.run(["exec", "-t", name, "--", "true"])
        #expect(result.status == 2)
        #expect(result.stderr == "error: the input device is not a TTY\n  → drop -t, or run from a terminal\n")
    }
}
