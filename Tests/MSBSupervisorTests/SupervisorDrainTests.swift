import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol
import Testing
@testable import MSBSupervisor

/// `msb drain` at the supervisor, with a scripted agent: new commands are refused, the ones
/// running (attached or detached) finish, and then the sandbox stops by itself.
@Suite struct SupervisorDrainTests {
    /// An agent whose `sleep N` execs end N seconds after they start, from another thread.
    static func sleepingAgent(_ agent: ScriptedAgent) {
        agent.onExec = { id, request, agent in
            let seconds = request.argv.count == 2 ? Double(request.argv[1]) ?? 0 : 0
            Thread.detachNewThread {
                usleep(UInt32(seconds * 1_000_000))
                agent.send(id, .exited(ExitStatus(code: 7)))
            }
        }
    }

    @Test func runningCommandsFinishNewOnesAreRefusedThenItStops() throws {
        let fixture = try SupervisorFixture(configure: { Self.sleepingAgent($0) })
        defer { fixture.tearDown() }
        // One attached exec and one detached: the drain waits for both.
        let attachedConnection = try fixture.connect()
        let attached = attachedConnection.exec(ExecRequest(argv: ["sleep", "1"]))
        attachedConnection.flush()
        let detachedConnection = try fixture.connect()
        let detached = detachedConnection.exec(ExecRequest(argv: ["sleep", "2.2"]))
        detached.detach()
        detachedConnection.flush()
        usleep(200_000)
        let drainedAt = MonotonicClock.now()
        try fixture.connect().drain(timeoutMilliseconds: 0)
        #expect(try fixture.record()?.status == .draining)

        let refused = try runCollecting(try fixture.connect().exec(ExecRequest(argv: ["true"])))
        guard case .failed(let failure) = refused.outcome else { Issue.record("a new exec ran: \(refused.outcome)"); return }
        #expect(failure.message == "sandbox fake is draining: it takes no new commands and stops once its running ones end")
        // Metrics still answer while draining.
        _ = try fixture.connect().stats(timeoutSeconds: 5)

        #expect(try runCollecting(attached).outcome == .exited(ExitStatus(code: 7)))
        #expect(fixture.waitForExit(seconds: 10) == 0)
        // The detached exec ended last, 2.2 s after it started (0.2 s before the drain).
        #expect(MonotonicClock.now() - drainedAt >= 1.9)
        let record = try #require(try fixture.record())
        #expect(record.status == .stopped && record.statusReason == "stopped: drained")
    }

    @Test func anIdleSandboxStopsAtOnce() throws {
        let fixture = try SupervisorFixture()
        defer { fixture.tearDown() }
        try fixture.connect().drain(timeoutMilliseconds: 0)
        #expect(fixture.waitForExit(seconds: 5) == 0)
        #expect(try fixture.record()?.statusReason == "stopped: drained")
    }

    @Test func theTimeoutStopsWhatStillRuns() throws {
        let fixture = try SupervisorFixture(configure: { Self.sleepingAgent($0) })
        defer { fixture.tearDown() }
        let connection = try fixture.connect()
        let running = connection.exec(ExecRequest(argv: ["sleep", "60"]))
        _ = running
        connection.flush()
        usleep(200_000)
        let drainedAt = MonotonicClock.now()
        try fixture.connect().drain(timeoutMilliseconds: 500)
        #expect(fixture.waitForExit(seconds: 10) == 0)
        #expect(MonotonicClock.now() - drainedAt >= 0.5)
        #expect(try fixture.record()?.statusReason == "stopped: drain timed out with 1 command(s) still running")
    }
}
