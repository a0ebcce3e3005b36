import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol
import Testing
@testable import MSBSupervisor

/// `--idle-timeout` and `--hostname` at the supervisor, with a scripted agent: what counts
/// as serving a client, when the sandbox stops, and what it records.
@Suite struct SupervisorIdleTests {
    @Test func anIdleSandboxStopsWithTheReason() throws {
        let started = MonotonicClock.now()
        let fixture = try SupervisorFixture(sandbox: { $0.idleTimeoutMilliseconds = 500 })
        defer { fixture.tearDown() }
        #expect(fixture.waitForExit(seconds: 10) == 0)
        #expect(MonotonicClock.now() - started >= 0.5)
        let record = try #require(try fixture.record())
        #expect(record.status == .stopped)
        #expect(record.statusReason == "stopped: idle for 0.5s")
        #expect(fixture.agent.messages.contains { $0.message == .shutdown })
    }

    @Test func aRunningExecKeepsItAndTheIdleTimeCountsFromItsEnd() throws {
        let fixture = try SupervisorFixture(configure: { agent in
            agent.onExec = { id, _, agent in
                // Answers after twice the idle timeout, from another thread.
                Thread.detachNewThread {
                    usleep(1_400_000)
                    agent.send(id, .exited(ExitStatus(code: 0)))
                }
            }
        }, sandbox: { $0.idleTimeoutMilliseconds = 700 })
        defer { fixture.tearDown() }
        let result = try runCollecting(try fixture.connect().exec(ExecRequest(argv: ["sleep", "1.4"])))
        let ended = MonotonicClock.now()
        #expect(result.outcome == .exited(ExitStatus(code: 0)))
        #expect(try fixture.record()?.status == .running)
        #expect(fixture.waitForExit(seconds: 10) == 0)
        #expect(MonotonicClock.now() - ended >= 0.6)
        #expect(try fixture.record()?.statusReason == "stopped: idle for 0.7s")
    }

    @Test func metricsRequestsAreNotActivity() throws {
        let fixture = try SupervisorFixture(sandbox: { $0.idleTimeoutMilliseconds = 800 })
        defer { fixture.tearDown() }
        let started = MonotonicClock.now()
        while MonotonicClock.now() - started < 3, fixture.waitForExit(seconds: 0) == nil {
            _ = try? fixture.connect().stats(timeoutSeconds: 2)
            usleep(100_000)
        }
        #expect(fixture.waitForExit(seconds: 5) == 0)
        #expect(MonotonicClock.now() - started < 3)
        #expect(try fixture.record()?.statusReason == "stopped: idle for 0.8s")
    }

    @Test func withoutAnIdleTimeoutTheSandboxRunsOn() throws {
        let fixture = try SupervisorFixture()
        defer { fixture.tearDown() }
        #expect(fixture.waitForExit(seconds: 1.5) == nil)
        #expect(try fixture.record()?.status == .running)
    }

    @Test func theGuestGetsItsHostnameOrTheSandboxName() throws {
        func hostname(_ configured: String?) throws -> String? {
            let fixture = try SupervisorFixture(sandbox: { $0.hostname = configured })
            defer { fixture.tearDown() }
            for envelope in fixture.agent.messages {
                if case .setup(let setup) = envelope.message { return setup.hostname }
            }
            return nil
        }
        #expect(try hostname(nil) == SupervisorFixture.name)
        #expect(try hostname("web-1.internal") == "web-1.internal")
    }
}
