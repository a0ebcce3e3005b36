import Foundation
import Glibc
import MSBCore
import MSBOS
import MSBProtocol
import Testing
@testable import MSBSupervisor

/// `scripts` and `exec` at the supervisor, with a scripted agent: the script files it
/// asks the guest to write, the start command's exec, and its output in a bounded log.
@Suite struct SupervisorStartCommandTests {
    static func log(_ fixture: SupervisorFixture) -> String {
        String(decoding: BoundedLogFile.read(path: fixture.paths.startCommandLog(SupervisorFixture.name), maxBytes: 1 << 24).bytes, as: UTF8.self)
    }

    static func waitFor(_ condition: () -> Bool) {
        let deadline = MonotonicClock.now() + 10
        while !condition() && MonotonicClock.now() < deadline { usleep(20_000) }
    }

    @Test func scriptsAreWrittenThenTheStartCommandRunsAndItsEndIsLogged() throws {
        let fixture = try SupervisorFixture(configure: { agent in
            agent.onFile = { id, _, agent in agent.send(id, .fileReply(FileReply())) }
            agent.onExec = { id, _, agent in
                agent.send(id, .started(pid: 41))
                agent.send(id, .stdout(Array("out\n".utf8)))
                agent.send(id, .stderr(Array("err\n".utf8)))
                agent.send(id, .exited(ExitStatus(code: 7)))
            }
        }, sandbox: {
            $0.scripts = ["test": "make test \"$@\"", "b": "true"]
            $0.startCommand = "serve --port 80"
            $0.workingDirectory = "/srv"
        })
        defer { fixture.tearDown() }
        Self.waitFor { Self.log(fixture).contains("exited") }
        let text = Self.log(fixture)
        #expect(text.hasPrefix("[msb] exec started at ") && text.contains(": /bin/sh -c serve --port 80\n"), "\(text)")
        #expect(text.hasSuffix("out\nerr\n[msb] exec exited with status 7\n"), "\(text)")
        let files = fixture.agent.messages.compactMap { envelope -> FileRequest? in
            if case .fileRequest(let request) = envelope.message { return request } else { return nil }
        }
        #expect(files.map(\.operation) == [.remove, .makeDirectory, .write, .write])
        #expect(files.map(\.path) == ["/.msb/scripts", "/.msb/scripts", "/.msb/scripts/b", "/.msb/scripts/test"])
        #expect(files[3].mode == 0o755 && files[3].data == Array("#!/bin/sh\nmake test \"$@\"\n".utf8))
        let execs = fixture.agent.messages.compactMap { envelope -> ExecRequest? in
            if case .exec(let request) = envelope.message { return request } else { return nil }
        }
        #expect(execs.map(\.argv) == [["/bin/sh", "-c", "serve --port 80"]])
        #expect(execs.first?.environment == ["FROM_SANDBOX=1"] && execs.first?.workingDirectory == "/srv")
        // The exec came after every script write.
        let order = fixture.agent.messages.map { if case .exec = $0.message { "exec" } else if case .fileRequest = $0.message { "file" } else { "" } }
            .filter { !$0.isEmpty }
        #expect(order == ["file", "file", "file", "file", "exec"])
    }

    @Test func aSandboxWithoutThemSendsNoRequest() throws {
        let fixture = try SupervisorFixture()
        defer { fixture.tearDown() }
        #expect(fixture.waitForExit(seconds: 0.5) == nil)
        #expect(!fixture.agent.messages.contains { if case .fileRequest = $0.message { true } else if case .exec = $0.message { true } else { false } })
        #expect(access(fixture.paths.startCommandLog(SupervisorFixture.name), F_OK) != 0)
    }

    @Test func aFloodingStartCommandKeepsTheLogBounded() throws {
        let chunk = [UInt8](repeating: 0x78, count: 60 << 10)
        let fixture = try SupervisorFixture(configure: { agent in
            agent.onExec = { id, _, agent in
                // 10 MiB: more than the two files together may keep.
                for _ in 0..<175 { agent.send(id, .stdout(chunk)) }
                agent.send(id, .exited(ExitStatus(code: 0, signal: 9)))
            }
        }, sandbox: { $0.startCommand = "yes" })
        defer { fixture.tearDown() }
        let path = fixture.paths.startCommandLog(SupervisorFixture.name)
        Self.waitFor { String(decoding: BoundedLogFile.read(path: path, maxBytes: 100).bytes, as: UTF8.self).contains("killed by signal 9") }
        func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
        #expect(size(path) <= BoundedLogFile.startCommandCapBytes && size(path + ".1") <= BoundedLogFile.startCommandCapBytes)
        #expect(size(path) + size(path + ".1") > BoundedLogFile.startCommandCapBytes)
        #expect(String(decoding: BoundedLogFile.read(path: path, maxBytes: 100).bytes, as: UTF8.self).hasSuffix("[msb] exec was killed by signal 9\n"))
    }
}
