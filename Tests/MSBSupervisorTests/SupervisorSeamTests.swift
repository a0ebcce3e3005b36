import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol
import MSBVMM
import Testing
@testable import MSBSupervisor

/// The real supervisor between a real client connection and a scripted agent on a
/// socketpair: routing, concurrency, disconnects, a silent or vanished agent, stop deadlines.
@Suite struct SupervisorSeamTests {
    @Test func execOutputAndExitCodeAreRoutedWithSandboxDefaults() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { id, request, agent in
                agent.send(id, .stdout(Array((request.argv.dropFirst().joined(separator: " ") + "\n").utf8)))
                agent.send(id, .stderr(Array(request.environment.joined(separator: ",").utf8)))
                agent.send(id, .exited(ExitStatus(code: 3)))
            }
        }
        defer { fixture.tearDown() }
        let session = try fixture.connect().exec(ExecRequest(argv: ["echo", "hi", "there"], environment: ["A=2"]))
        let result = try runCollecting(session)
        #expect(result.outcome == .exited(ExitStatus(code: 3)))
        #expect(result.outcome.exitCode == 3)
        #expect(result.stdout == "hi there\n")
        // The sandbox's create -e defaults come first; the request's own follow and win.
        #expect(result.stderr == "FROM_SANDBOX=1,A=2")
    }

    @Test func concurrentClientsEachGetTheirOwnOutput() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { id, request, agent in
                // Answer the second request first: routing must not depend on order.
                let delay: useconds_t = request.argv[1] == "first" ? 200_000 : 0
                Thread.detachNewThread {
                    usleep(delay)
                    agent.send(id, .stdout(Array(request.argv[1].utf8)))
                    agent.send(id, .exited(ExitStatus(code: request.argv[1] == "first" ? 1 : 2)))
                }
            }
        }
        defer { fixture.tearDown() }
        let results = Box<[String: (ExecOutcome, String)]>([:])
        let group = DispatchGroup()
        for word in ["first", "second", "third"] {
            let session = UncheckedSession(session: try fixture.connect().exec(ExecRequest(argv: ["echo", word])))
            group.enter()
            Thread.detachNewThread {
                if let result = try? runCollecting(session.session) { results.mutate { $0[word] = (result.outcome, result.stdout) } }
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(results.value["first"]?.1 == "first")
        #expect(results.value["first"]?.0.exitCode == 1)
        #expect(results.value["second"]?.1 == "second")
        #expect(results.value["third"]?.0.exitCode == 2)
    }

    @Test func aClientThatDisconnectsMidStreamHasItsProcessKilled() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { id, _, agent in agent.send(id, .stdout(Array("working\n".utf8))) }
        }
        defer { fixture.tearDown() }
        let execId: UInt32
        do {
            // The connection (held by its session) closes when both go out of use here.
            let session = try fixture.connect().exec(ExecRequest(argv: ["sleep", "1000"]))
            guard case .stdout = try session.next() else { Issue.record("no output before the disconnect"); return }
            execId = try #require(fixture.agent.messages.first { if case .exec = $0.message { true } else { false } }?.id)
        }
        let killed = waitUntil(seconds: 5) {
            fixture.agent.messages.contains { $0.id == execId && $0.message == .signal(SIGKILL) }
        }
        #expect(killed, "the supervisor should kill the process of a client that went away")
    }

    @Test func aSilentAgentReleasesTheExecWithTheReason() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { id, _, agent in
                agent.send(id, .started(pid: 42))
                agent.silent = true  // wedged: no output, no exit, no heartbeat
            }
        }
        defer { fixture.tearDown() }
        let started = MonotonicClock.now()
        let result = try runCollecting(fixture.connect().exec(ExecRequest(argv: ["sleep", "1000"])))
        let elapsed = MonotonicClock.now() - started
        #expect(result.outcome == .failed(ExecFailure(kind: .failed, message: "the guest agent stopped answering (no heartbeat for 1s)")))
        #expect(result.outcome.exitCode == 125)
        #expect(elapsed < 8, "released after \(elapsed)s")
        // New requests are refused with the same reason while the agent stays silent.
        let again = try runCollecting(fixture.connect().exec(ExecRequest(argv: ["true"])))
        #expect(again.outcome == result.outcome)
        #expect(throws: MSBError.self) { try fixture.connect().stats(timeoutSeconds: 5) }
    }

    @Test func aBusyAgentThatKeepsItsHeartbeatIsNotCutOff() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { id, _, agent in
                Thread.detachNewThread {
                    usleep(2_500_000)  // longer than the 1 s silence limit
                    agent.send(id, .exited(ExitStatus(code: 0)))
                }
            }
        }
        defer { fixture.tearDown() }
        let result = try runCollecting(fixture.connect().exec(ExecRequest(argv: ["sleep", "2"])))
        #expect(result.outcome == .exited(ExitStatus(code: 0)))
    }

    @Test func agentEOFEndsRequestsAndTheSandboxIsRecordedCrashed() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { _, _, agent in agent.closeChannel() }
        }
        defer { fixture.tearDown() }
        let result = try runCollecting(fixture.connect().exec(ExecRequest(argv: ["true"])))
        #expect(result.outcome.exitCode == 125)
        // QEMU would exit by itself; the fake does not, so the supervisor ends it after the grace.
        #expect(fixture.waitForExit(seconds: 10) == 1)
        #expect(fixture.vm.value?.signals.first == SIGTERM)
        let record = try #require(try fixture.record())
        #expect(record.status == .crashed)
        #expect(record.statusReason == "the VM killed by signal \(SIGTERM)")
    }

    @Test func aGracefulStopOfASilentGuestEndsByItsDeadline() throws {
        let fixture = try SupervisorFixture { agent in agent.heartbeats = true }
        defer { fixture.tearDown() }
        fixture.agent.silent = true
        let started = MonotonicClock.now()
        try fixture.connect().stop(force: false, timeoutSeconds: 10)
        #expect(MonotonicClock.now() - started < 8)
        #expect(fixture.waitForExit(seconds: 5) == 0)
        let record = try #require(try fixture.record())
        #expect(record.status == .stopped)
        #expect(record.statusReason == "stopped by user")
        #expect(fixture.agent.messages.contains { $0.message == .shutdown })
    }

    @Test func metricsComeBackWithTheHostCPUFigure() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onExec = { _, _, _ in }
        }
        defer { fixture.tearDown() }
        fixture.agent.onStats = { id, agent in agent.send(id, .stats(GuestStats(memoryTotalKiB: 1000, memoryAvailableKiB: 400))) }
        let stats = try fixture.connect().stats(timeoutSeconds: 5)
        #expect(stats.memoryTotalKiB == 1000)
        #expect(stats.memoryAvailableKiB == 400)
    }

    /// `saveSnapshot` can reach the supervisor from a remote client (a server's attach
    /// stream carries the raw protocol): any directory but an empty work directory of the
    /// sandbox's own snapshot store is refused before anything is written.
    @Test func aSnapshotIsWrittenOnlyIntoAFreshWorkDirectoryOfItsStore() throws {
        let fixture = try SupervisorFixture()
        defer { fixture.tearDown() }
        let outside = fixture.home + "/elsewhere"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let store = SnapshotStore(directory: fixture.paths.snapshots)
        let used = try store.makeWorkDirectory()
        _ = FileManager.default.createFile(atPath: used + "/memory.ram", contents: Data("keep".utf8))
        for directory in [outside, "/", fixture.paths.snapshots, used, fixture.paths.snapshots + "/.tmp-../../elsewhere"] {
            let error = #expect(throws: MSBError.self) { try fixture.connect().saveSnapshot(directory: directory, timeoutSeconds: 5) }
            #expect(error?.message == "refused: not a snapshot work directory", "\(directory)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        #expect(FileManager.default.contents(atPath: used + "/memory.ram") == Data("keep".utf8))
        // The fake VMM cannot migrate: a real work directory gets as far as saying so.
        let fresh = try store.makeWorkDirectory()
        let unsupported = #expect(throws: MSBError.self) { try fixture.connect().saveSnapshot(directory: fresh, timeoutSeconds: 5) }
        #expect(unsupported?.message == "the VMM (fake) cannot save a running guest")
    }
}

/// The client's own deadline: a supervisor that accepts but never answers releases it.
@Suite struct SupervisorConnectionTests {
    @Test func aSupervisorThatStopsAnsweringReleasesTheClient() throws {
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[1]) }
        let connection = SupervisorConnection(fd: pair[0], liveness: .init(pingAfterSeconds: 0.2, answerWithinSeconds: 0.5))
        let started = MonotonicClock.now()
        #expect {
            _ = try runCollecting(connection.exec(ExecRequest(argv: ["true"])))
        } throws: { error in
            (error as? MSBError)?.message == "the sandbox supervisor stopped answering (no reply to a liveness check within 0.5s)"
        }
        #expect(MonotonicClock.now() - started < 5)
    }

    @Test func aClosedConnectionSaysTheCommandDidNotFinish() throws {
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        let connection = SupervisorConnection(fd: pair[0])
        let session = connection.exec(ExecRequest(argv: ["true"]))
        close(pair[1])
        #expect {
            _ = try runCollecting(session)
        } throws: { error in
            (error as? MSBError)?.message == "lost the connection to the sandbox before the command finished"
        }
    }
}

func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicClock.now() + seconds
    while !condition() {
        guard MonotonicClock.now() < deadline else { return false }
        usleep(10_000)
    }
    return true
}

private struct UncheckedSession: @unchecked Sendable {
    let session: ExecSession
}
