import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
@testable import MSBServer
import Testing

/// `sandbox.wait` without VMs: its params are checked, and a call never blocks longer
/// than the server's wait limit, whatever `timeout` it asks for.
@Suite struct WaitRPCTests {
    let home = NSTemporaryDirectory() + "msbwait-\(UUID().uuidString.prefix(8))"

    func dispatcher(maxWaitSeconds: Double) -> RPCDispatcher {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configuration.limits.maxWaitSeconds = maxWaitSeconds
        return RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                             authority: nil)
    }

    func call(_ d: RPCDispatcher, _ params: String) throws -> [String: Any] {
        let body = #"{"jsonrpc":"2.0","method":"sandbox.wait","params":\#(params),"id":1}"#
        let reply = d.handle(body: Array(body.utf8), authorization: nil)
        return try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
    }

    func error(_ json: [String: Any]) -> (code: Int, message: String) {
        let object = json["error"] as? [String: Any] ?? [:]
        return (object["code"] as? Int ?? 0, object["message"] as? String ?? "")
    }

    @Test func badParamsAndUnknownSandboxesAreRefused() throws {
        let d = dispatcher(maxWaitSeconds: 0.2)
        #expect(error(try call(d, #"{"sandbox":"web","timeout":-1}"#)) == (-32602, "invalid params: 'timeout' must be a number of seconds, 0 or more"))
        #expect(error(try call(d, #"{"sandbox":"web","timeout":"soon"}"#)) == (-32602, "invalid params: 'timeout' must be a number"))
        #expect(error(try call(d, #"{"sandbox":"../x"}"#)).code == -32602)
        #expect(error(try call(d, #"{"sandbox":"ghost","timeout":1}"#)) == (-32001, "sandbox not found: ghost"))
    }

    @Test func aCallIsCutToTheServersLimit() throws {
        let d = dispatcher(maxWaitSeconds: 0.3)
        // A running sandbox whose "supervisor" is this test process: it does not stop.
        let me = try #require(ProcessIdentity.of(pid: getpid()))
        try StateStore(paths: d.configuration.paths.namespaced("default")).insert(SandboxRecord(
            config: SandboxConfig(name: "web"), status: .running, createdAt: Date(), supervisor: me))
        let started = MonotonicClock.now()
        let answer = try call(d, #"{"sandbox":"web","timeout":3600}"#)
        let took = MonotonicClock.now() - started
        #expect(took >= 0.3 && took < 5)
        let sandbox = (answer["result"] as? [String: Any])?["sandbox"] as? [String: Any]
        #expect(sandbox?["status"] as? String == "running")
        #expect(sandbox?["name"] as? String == "web")
    }
}
