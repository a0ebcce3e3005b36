import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol
import Testing
@testable import MSBSupervisor

/// The guest controls the agent's side of the channel: a scripted hostile agent behind the
/// real supervisor sends what no honest agent would. Nothing it sends may trap the host,
/// grow the supervisor's memory without bound, or reach another request.
@Suite struct HostileAgentTests {
    static let impossibleStatuses: [(MSBProtocol.ExitStatus, Int32)] = [
        (MSBProtocol.ExitStatus(code: 0, signal: Int32.max), 125),
        (MSBProtocol.ExitStatus(code: 0, signal: Int32.min), 125),
        (MSBProtocol.ExitStatus(code: 0, signal: -1), 125),
        (MSBProtocol.ExitStatus(code: 0, signal: 9), 137),
        (MSBProtocol.ExitStatus(code: Int32.max), 125),
        (MSBProtocol.ExitStatus(code: -5), 125),
        (MSBProtocol.ExitStatus(code: 255), 255),
    ]

    @Test(arguments: impossibleStatuses)
    func impossibleExitStatusesDoNotOverflow(status: MSBProtocol.ExitStatus, expected: Int32) throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { id, _, agent in agent.send(id, .exited(status)) }
        }
        defer { fixture.tearDown() }
        let result = try runCollecting(fixture.connect().exec(ExecRequest(argv: ["true"])))
        #expect(result.outcome.exitCode == expected)
    }

    @Test func hugeStatisticsDoNotTrapTheMetricsPath() throws {
        let fixture = try SupervisorFixture()
        defer { fixture.tearDown() }
        fixture.agent.onStats = { id, agent in
            agent.send(id, .stats(GuestStats(memoryTotalKiB: .max, memoryAvailableKiB: 0, diskUsedBytes: .max, uptimeMilliseconds: .max)))
        }
        // The supervisor runs in this test process: it is the live supervisor the record names.
        _ = try StateStore(paths: fixture.paths).update(SupervisorFixture.name) {
            $0.status = .running
            $0.supervisor = ProcessIdentity.of(pid: getpid())
        }
        let metrics = try LocalBackend(paths: fixture.paths).metrics(SupervisorFixture.name)
        #expect(metrics.diskUsedBytes == Int.max)
        #expect(metrics.memoryUsedMiB == Int(UInt64.max / 1024))
    }

    static let brokenFrames: [(String, [UInt8], String)] = [
        ("an oversized length", [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0], "frame of 4294967295 bytes exceeds"),
        ("a length shorter than the header", [0, 0, 0, 2, 1, 0], "shorter than its header"),
        ("an unknown message type", [0, 0, 0, 5, 200, 0, 0, 0, 1], "unknown message type 200"),
    ]

    @Test(arguments: brokenFrames)
    func framesThatAreNotTheProtocolCutTheAgentOff(label: String, bytes: [UInt8], reason: String) throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { _, _, agent in agent.sendRaw(bytes) }
        }
        defer { fixture.tearDown() }
        let result = try runCollecting(fixture.connect().exec(ExecRequest(argv: ["true"])))
        #expect(result.outcome.exitCode == 125, "\(label)")
        guard case .failed(let failure) = result.outcome else { Issue.record("\(label): \(result.outcome)"); return }
        #expect(failure.message.hasPrefix("the guest agent broke the protocol ("), "\(label)")
        #expect(failure.message.contains(reason), "\(label): \(failure.message)")
        // The VM of a guest that broke the protocol is ended.
        #expect(fixture.waitForExit(seconds: 10) != nil, "\(label)")
    }

    /// The guest's own words about a failed setup end up in the sandbox's record and on
    /// the user's terminal: escaped, and bounded in scalars (a Character can hold any
    /// number of combining marks, so a cut by Characters is no bound).
    @Test func aHostileSetupAnswerIsEscapedAndBounded() throws {
        let marks = "a" + String(repeating: "\u{301}", count: 200_000) + "\u{1b}]0;owned\u{7}"
        let fixture = try SupervisorFixture(bootFails: true) { $0.setupProblem = marks }
        defer { fixture.tearDown() }
        let reason = try #require(try fixture.record()?.statusReason)
        #expect(reason.hasPrefix("the guest could not be set up: "))
        #expect(reason.unicodeScalars.count < 1_000, "\(reason.unicodeScalars.count) scalars")
        #expect(!reason.contains("\u{1b}"))
    }

    @Test func answersToRequestsNeverMadeAreIgnored() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { id, _, agent in
                for stray in [id &+ 1, 999, UInt32.max, 0] {
                    agent.send(stray, .stdout(Array("not yours\n".utf8)))
                    agent.send(stray, .exited(MSBProtocol.ExitStatus(code: 9)))
                    agent.send(stray, .stats(GuestStats()))
                    agent.send(stray, .replDone(ReplOutcome(status: "success")))
                }
                agent.send(id, .stdout(Array("mine\n".utf8)))
                agent.send(id, .exited(MSBProtocol.ExitStatus(code: 4)))
            }
        }
        defer { fixture.tearDown() }
        for _ in 0..<2 {
            let result = try runCollecting(fixture.connect().exec(ExecRequest(argv: ["true"])))
            #expect(result.stdout == "mine\n")
            #expect(result.outcome.exitCode == 4)
        }
    }

    @Test func endlessOutputToAClientThatDoesNotReadIsHeldBack() throws {
        let frame = Frame.encode(Envelope(id: 0, .stdout([UInt8](repeating: 0x41, count: 60_000))))
        let floodId = Box<UInt32?>(nil)
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { id, _, _ in floodId.value = id }
        }
        defer { fixture.tearDown() }
        // A client that asks for output and then reads nothing, ever.
        let client = try UnixSocket.connect(path: fixture.paths.controlSocket(SupervisorFixture.name))
        defer { close(client) }
        try FileDescriptorIO.writeAll(client, Frame.encode(Envelope(id: 1, .exec(ExecRequest(argv: ["yes"])))))
        #expect(waitUntil(seconds: 5) { floodId.value != nil })
        let id = try #require(floodId.value)
        let routed = Frame.encode(Envelope(id: id, .stdout([UInt8](repeating: 0x41, count: 60_000))))
        #expect(routed.count == frame.count)
        // Heartbeats stop while the supervisor holds the guest back; the agent is not blamed.
        fixture.agent.heartbeats = false
        let taken = fixture.agent.flood(frame: routed, seconds: 3)
        // The socket buffers (a few MiB at most) and the supervisor's bounded backlog: not 3 s of flood.
        #expect(taken < 64 << 20, "the supervisor took \(taken) bytes for a client that reads nothing")
        let rss = residentKiB()
        let more = fixture.agent.flood(frame: routed, seconds: 1)
        #expect(more < 8 << 20)
        #expect(residentKiB() - rss < 64 << 10)
    }

    @Test func aForgedREPLMarkerWithoutANewlinePassesThroughInLinearTime() throws {
        // The agent's thread is busy sending for a while and sends no heartbeat meanwhile: on
        // a loaded machine the fixture's 1 s silence limit would end the run early.
        let patient = Supervisor.Timing(agentSilenceSeconds: 60, gracefulStopSeconds: 1, channelClosedExitSeconds: 0.5)
        let fixture = try SupervisorFixture(timing: patient) { agent in
            agent.onExec = { id, request, agent in
                let nonce = request.environment.first { $0.hasPrefix("MSB_REPL_NONCE=") }.map { String($0.dropFirst(15)) } ?? ""
                let marker = Array(("\u{1e}MSB" + nonce).utf8)
                agent.send(id, .stdout(marker))
                // 2 MiB after the marker and never a newline, in small pieces (more only makes
                // the test slow on a loaded machine: the buffer bound is checked below).
                let chunk = [UInt8](repeating: 0x42, count: 16 << 10)
                for _ in 0..<128 { agent.send(id, .stdout(chunk)) }
                agent.send(id, .exited(MSBProtocol.ExitStatus(code: 0)))
            }
        }
        defer { fixture.tearDown() }
        let received = Box<Int>(0)
        let started = MonotonicClock.now()
        let outcome = try fixture.connect().runCode(
            language: "python", code: "print(1)", timeoutMilliseconds: 300_000, interruptFd: nil,
            stdout: { bytes in received.mutate { $0 += bytes.count } }, stderr: { _ in })
        #expect(outcome.status == "error")
        // Everything after the forged marker reached the caller as output (the last bytes,
        // shorter than a status line, may be held until the interpreter ended).
        #expect(received.value >= 2 << 20 - InterpreterPool.maxTrailerBytes, "\(outcome.message ?? "") after \(MonotonicClock.now() - started)s")
        #expect(MonotonicClock.now() - started < 240)
    }

    @Test func theMarkerBufferStaysBounded() {
        let pool = InterpreterPool()
        let interpreter = InterpreterPool.Interpreter(language: "python", execId: 1, nonce: "n")
        _ = pool
        var passed = 0
        passed += pool.consume(interpreter, bytes: interpreter.marker, isStdout: true).output.count
        for _ in 0..<1000 {
            passed += pool.consume(interpreter, bytes: [UInt8](repeating: 0x43, count: 4096), isStdout: true).output.count
            #expect(interpreter.stdoutBuffer.count <= interpreter.marker.count + InterpreterPool.maxTrailerBytes + 4096)
        }
        #expect(passed + interpreter.stdoutBuffer.count == interpreter.marker.count + 4096 * 1000)
    }
}

private func residentKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    return Int(line.split(separator: " ")[1]) ?? 0
}
