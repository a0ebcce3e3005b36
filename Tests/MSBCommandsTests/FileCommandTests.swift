import Foundation
import Glibc
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// `msb fs` against a backend in memory: what reaches the backend, what is printed, and
/// the messages and exit codes of refusals.
@Suite struct FileCommandTests {
    final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func append(_ more: String) { lock.withLock { text += more } }
        var value: String { lock.withLock { text } }
    }

    func run(_ arguments: [String], _ backend: FakeBackend, stdin: [UInt8]? = nil) -> (status: Int32, out: String, err: String) {
        let out = Recorder(), err = Recorder()
        var fds: [Int32] = [-1, -1]
        if let stdin {
            _ = pipe(&fds)
            _ = stdin.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }  // small: fits the pipe
            close(fds[1])
        }
        defer { if fds[0] >= 0 { close(fds[0]) } }
        let context = CommandContext(environment: ["HOME": "/nonexistent"], makeBackend: { backend },
                                     standardOutput: { out.append($0) }, standardError: { err.append($0) },
                                     standardInputFd: stdin == nil ? -1 : fds[0])
        let status = CLI.main(arguments, context: context)
        return (status, out.value, err.value)
    }

    let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])

    @Test func writeCatListStatAndRemove() {
        let wrote = run(["fs", "write", "web:/root/hello.txt", "--mode", "600"], backend, stdin: Array("hi there\n".utf8))
        #expect(wrote.status == 0, "\(wrote.err)")
        #expect(backend.file("/root/hello.txt") == Array("hi there\n".utf8))
        // Written beside the target, then renamed over it: guest readers never see a part.
        let calls = backend.calls
        #expect(calls.count == 2, "\(calls)")
        #expect(calls.first?.hasPrefix("fs web write(path: \"/root/.hello.txt.msb-") == true)
        #expect(calls.first?.hasSuffix("mode: Optional(384))") == true)  // 0600
        #expect(calls.last?.hasPrefix("fs web rename(path: \"/root/.hello.txt.msb-") == true)
        #expect(calls.last?.hasSuffix("destination: \"/root/hello.txt\")") == true)
        // Without --mode, the file it replaces is asked for its mode first.
        #expect(run(["fs", "write", "web:/root/hello.txt"], backend, stdin: Array("again\n".utf8)).status == 0)
        #expect(backend.calls.dropFirst(2).first == "fs web stat(path: \"/root/hello.txt\")")
        #expect(backend.file("/root/hello.txt") == Array("again\n".utf8))
        _ = run(["fs", "write", "web:/root/hello.txt"], backend, stdin: Array("hi there\n".utf8))
        let cat = run(["fs", "cat", "web:/root//hello.txt"], backend)
        #expect(cat.status == 0 && cat.out == "hi there\n")
        _ = run(["fs", "mkdir", "web:/root"], backend)
        let listed = run(["fs", "ls", "web:/root", "--format", "json"], backend)
        let objects = (try? JSONSerialization.jsonObject(with: Data(listed.out.utf8))) as? [[String: Any]]
        #expect(objects?.map { $0["name"] as? String } == ["hello.txt"])
        #expect(objects?.first?["size"] as? Int == 9)
        let table = run(["fs", "ls", "web:/root"], backend)
        #expect(table.out.contains("-rw-r--r--") && table.out.contains("hello.txt"))
        let stat = run(["fs", "stat", "web:/root/hello.txt", "--format", "json"], backend)
        #expect(stat.out.contains("\"name\" : \"hello.txt\"") || stat.out.contains("\"name\":\"hello.txt\""))
        #expect(run(["fs", "mv", "web:/root/hello.txt", "/root/bye.txt"], backend).status == 0)
        #expect(backend.file("/root/bye.txt") != nil)
        #expect(run(["fs", "rm", "web:/root/bye.txt"], backend).status == 0)
        #expect(backend.file("/root/bye.txt") == nil)
    }

    @Test func aMissingFileIsAnErrorWithItsExitCode() {
        let result = run(["fs", "cat", "web:/nope"], backend)
        #expect(result.status == 1)
        #expect(result.err == "error: cannot reach web:/nope: no such file or directory\n")
    }

    @Test func usageErrorsNeverReachTheBackend() {
        let refused: [([String], String)] = [
            (["fs", "cat", "/etc/passwd"], "error: expected NAME:PATH, got '/etc/passwd'"),
            (["fs", "cat", "web:etc/passwd"], "error: the sandbox path in 'web:etc/passwd' must be absolute"),
            (["fs", "cat", "web:/etc/../../passwd"], "error: guest path must not contain '..'"),
            (["fs", "write", "web:/f", "--mode", "999"], "error: invalid mode '999'"),
            (["fs", "frob", "web:/f"], "error: unknown fs action 'frob'"),
            (["fs", "cat", "web:/a", "web:/b"], "error: 'msb fs cat' takes one NAME:PATH"),
            (["fs", "mv", "web:/a", "db:/b"], "error: 'msb fs mv' moves within one sandbox"),
        ]
        for (arguments, message) in refused {
            let result = run(arguments, backend)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.err.hasPrefix(message), "\(arguments): \(result.err)")
        }
        #expect(backend.calls.isEmpty)
    }
}
