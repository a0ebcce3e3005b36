import Foundation
import MSBCore
import MSBOS
import MSBProtocol
import MSBServer
import Testing

/// A server worker running `sandbox.command.run` is released like the CLI when the guest
/// goes silent: the real dispatcher, a namespace's real supervisor, a wedged scripted agent.
@Suite struct ServerWorkerDeadlineTests {
    @Test func commandRunOnASilentGuestAnswersWithTheReason() throws {
        let fixture = try SupervisorFixture(namespace: "default") { agent in
            agent.onExec = { id, _, agent in
                agent.send(id, .started(pid: 7))
                agent.silent = true
            }
        }
        defer { fixture.tearDown() }
        var configuration = ServerConfiguration(paths: fixture.rootPaths)
        configuration.dev = true
        let dispatcher = RPCDispatcher(configuration: configuration,
                                       host: SandboxHost(paths: fixture.rootPaths, limits: configuration.limits), authority: nil)
        let body = #"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"sandbox":"fake","command":"sleep","args":["1000"]},"id":1}"#
        let started = MonotonicClock.now()
        let reply = dispatcher.handle(body: Array(body.utf8), authorization: nil)
        let elapsed = MonotonicClock.now() - started
        #expect(elapsed < 8, "the worker was held \(elapsed)s")
        #expect(reply.status == 200)
        let result = (try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any])?["result"] as? [String: Any]
        #expect(result?["exit_code"] as? Int == 125)
        #expect(result?["success"] as? Bool == false)
        let output = result?["output"] as? [[String: String]]
        #expect(output == [["stream": "stderr", "text": "the guest agent stopped answering (no heartbeat for 1s)"]])
    }
}
