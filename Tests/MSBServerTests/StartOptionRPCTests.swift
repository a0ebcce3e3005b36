import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// The start options of `sandbox.start` / `sandbox.create` (`hostname`, `replace`,
/// `idle_timeout`): what reaches the sandbox's config, and the refusals that happen before
/// anything is touched. Booting them is IntegrationTests/StartOptionTests.
@Suite struct StartOptionRPCTests {
    let home = NSTemporaryDirectory() + "msbopt-\(UUID().uuidString.prefix(8))"

    func dispatcher() -> RPCDispatcher {
        let configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        return RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                             authority: nil)
    }

    func call(_ method: String, _ params: String, on d: RPCDispatcher) throws -> (status: Int, code: Int, message: String) {
        let body = #"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params),"id":"o1"}"#
        let reply = d.handle(body: Array(body.utf8), authorization: nil)
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
        let error = json["error"] as? [String: Any] ?? [:]
        return (reply.status, error["code"] as? Int ?? 0, error["message"] as? String ?? "")
    }

    func config(_ json: String) throws -> SandboxConfig {
        let params = try JSONDecoder().decode(RPC.SandboxConfigParams.self, from: Data(json.utf8))
        return try dispatcher().sandboxConfig(name: "web", params)
    }

    @Test func hostnameReachesTheConfig() throws {
        #expect(try config("{}").hostname == nil)
        #expect(try config(#"{"hostname":"api.internal"}"#).hostname == "api.internal")
    }

    @Test func badHostnamesAreInvalidParams() throws {
        let d = dispatcher()
        for bad in ["-x", "a_b", "", String(repeating: "a", count: 64)] {
            let refused = try call("sandbox.start", #"{"sandbox":"v","config":{"hostname":"\#(bad)"}}"#, on: d)
            #expect(refused.code == -32602, "\(bad)")
            #expect(refused.message == "invalid hostname '\(bad)'")
        }
        let notAString = try call("sandbox.create", #"{"sandbox":"v","config":{"hostname":5}}"#, on: d)
        #expect(notAString.code == -32602 && notAString.message == "invalid params: 'hostname' must be a string")
    }

    @Test func replaceIsRefusedWithCreateFalseAndWithABadConfig() throws {
        let d = dispatcher()
        let both = try call("sandbox.start", #"{"sandbox":"v","replace":true,"create":false}"#, on: d)
        #expect(both.code == -32602)
        #expect(both.message == "invalid params: 'replace' creates the sandbox afresh; it cannot go with 'create': false")
        // The config is checked before the old sandbox would go.
        let bad = try call("sandbox.start", #"{"sandbox":"v","replace":true,"config":{"cpus":0}}"#, on: d)
        #expect(bad.code == -32602 && bad.message == "invalid params: 'cpus' must be a whole number from 1 to 64")
        let notBool = try call("sandbox.start", #"{"sandbox":"v","replace":"yes"}"#, on: d)
        #expect(notBool.code == -32602 && notBool.message == "invalid params: 'replace' must be true or false")
    }
}

@Suite struct DependsOnRPCTests {
    @Test func dependsOnReachesTheConfigOnceEach() throws {
        let tests = StartOptionRPCTests()
        #expect(try tests.config(#"{"depends_on":["db","cache","db"]}"#).dependsOn == ["db", "cache"])
        #expect(try tests.config(#"{"depends_on":[]}"#).dependsOn == nil)
    }

    @Test func badDependenciesAreInvalidParams() throws {
        let tests = StartOptionRPCTests()
        let d = tests.dispatcher()
        let selfish = try tests.call("sandbox.start", #"{"sandbox":"web","config":{"depends_on":["web"]}}"#, on: d)
        #expect(selfish.code == -32602 && selfish.message == "sandbox web cannot depend on itself")
        let path = try tests.call("sandbox.create", #"{"sandbox":"web","config":{"depends_on":["../x"]}}"#, on: d)
        #expect(path.code == -32602 && path.message == "invalid sandbox name '../x'")
        let notAList = try tests.call("sandbox.start", #"{"sandbox":"web","config":{"depends_on":"db"}}"#, on: d)
        #expect(notAList.code == -32602 && notAList.message == "invalid params: 'depends_on' must be a list of strings")
    }
}

@Suite struct IdleTimeoutRPCTests {
    @Test func idleTimeoutIsSecondsRoundedUpToMilliseconds() throws {
        let tests = StartOptionRPCTests()
        #expect(try tests.config("{}").idleTimeoutMilliseconds == nil)
        #expect(try tests.config(#"{"idle_timeout":3}"#).idleTimeoutMilliseconds == 3000)
        #expect(try tests.config(#"{"idle_timeout":1.0001}"#).idleTimeoutMilliseconds == 1001)
    }

    @Test func badIdleTimeoutsAreInvalidParams() throws {
        let tests = StartOptionRPCTests()
        let d = tests.dispatcher()
        for bad in ["0", "-1", "0.0005", "1e300"] {
            let refused = try tests.call("sandbox.start", #"{"sandbox":"v","config":{"idle_timeout":\#(bad)}}"#, on: d)
            #expect(refused.code == -32602, "\(bad)")
            #expect(refused.message == "invalid params: 'idle_timeout' must be a number of seconds from 0.001 to 4294967295")
        }
    }
}

/// `sandbox.start` with a config for a stopped sandbox: what is applied to its saved config.
@Suite struct StartChangesRPCTests {
    /// A dispatcher and a stopped sandbox `web` (made with `envs` A=1, 512 MiB, a network) in
    /// its default namespace's store.
    func stopped(_ status: SandboxStatus = .stopped) throws -> (RPCDispatcher, LocalBackend, SandboxInfo) {
        let d = StartOptionRPCTests().dispatcher()
        let backend = try d.host.backend("default")
        try backend.paths.prepare()
        var config = SandboxConfig(name: "web", environment: ["A=1"], workingDirectory: "/srv")
        config.network = NetworkPolicy()
        config.hostname = "old"
        try StateStore(paths: backend.paths).insert(SandboxRecord(config: config, status: status, createdAt: Date()))
        return (d, backend, try backend.inspect("web"))
    }

    func apply(_ json: String, _ d: RPCDispatcher, _ backend: LocalBackend, _ info: SandboxInfo) throws -> SandboxConfig {
        let params = try JSONDecoder().decode(RPC.SandboxConfigParams.self, from: Data(json.utf8))
        _ = try d.applyStartChanges(params, to: info, backend)
        return try backend.inspect("web").config
    }

    @Test func givenFieldsAreAppliedOthersKept() throws {
        let (d, backend, info) = try stopped()
        let changed = try apply(#"{"image":"python","memory":1024,"cpus":2,"envs":["B=2"],"idle_timeout":3,"hostname":"new"}"#,
                                d, backend, info)
        #expect(changed.memoryMiB == 1024 && changed.cpus == 2)
        #expect(changed.environment == ["B=2"])  // the built-in image has no environment of its own
        #expect(changed.idleTimeoutMilliseconds == 3000 && changed.hostname == "new")
        // Not given, or not applied: as they were.
        #expect(changed.image == "base" && changed.workingDirectory == "/srv" && changed.network == NetworkPolicy())
    }

    @Test func theSDKsUsualConfigChangesOnlyMemoryAndCpus() throws {
        let (d, backend, info) = try stopped()
        let changed = try apply(#"{"image":"microsandbox/python","memory":512,"cpus":1}"#, d, backend, info)
        #expect(changed.environment == ["A=1"] && changed.hostname == "old" && changed.network == NetworkPolicy())
    }

    @Test func aBadValueChangesNothing() throws {
        let (d, backend, info) = try stopped()
        #expect(throws: MSBError.self) { try apply(#"{"memory":1024,"hostname":"-x"}"#, d, backend, info) }
        #expect(try backend.inspect("web").config.memoryMiB == 512)
    }

    @Test func aNetworkChangeIsCheckedAgainstTheAllowLists() throws {
        let (d, backend, info) = try stopped()
        let error = #expect(throws: MSBError.self) { try apply(#"{"ports":["8080:80"]}"#, d, backend, info) }
        #expect(error?.code == .accessDenied)
        let none = try apply(#"{"network":false}"#, d, backend, info)
        #expect(none.network == nil)
    }
}
