import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// `pull_policy`, `registry_auth` and `insecure_registry` of `sandbox.start`: parsed and
/// refused before anything is fetched; the credentials never reach the sandbox's config.
/// Pulling and building for real is IntegrationTests/ImageFirstUseTests.
@Suite struct ImageFetchRPCTests {
    let home = NSTemporaryDirectory() + "msbfetch-\(UUID().uuidString.prefix(8))"

    func dispatcher(insecureAllowed: Bool = false) -> RPCDispatcher {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configuration.allowInsecureRegistries = insecureAllowed
        return RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                             authority: nil)
    }

    func call(_ params: String, on d: RPCDispatcher, method: String = "sandbox.start") throws -> (code: Int, message: String, hint: String) {
        let body = #"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params),"id":"f1"}"#
        let reply = d.handle(body: Array(body.utf8), authorization: nil)
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
        let error = json["error"] as? [String: Any] ?? [:]
        let data = error["data"] as? [String: Any] ?? [:]
        return (error["code"] as? Int ?? 0, error["message"] as? String ?? "", data["hint"] as? String ?? "")
    }

    func params(_ json: String) throws -> RPC.SandboxConfigParams {
        try JSONDecoder().decode(RPC.SandboxConfigParams.self, from: Data(json.utf8))
    }

    @Test func aBadPolicyIsInvalidParams() throws {
        let d = dispatcher()
        let bad = try call(#"{"sandbox":"v","config":{"image":"python","pull_policy":"sometimes"}}"#, on: d)
        #expect(bad.code == -32602 && bad.message == "invalid params: 'pull_policy' must be missing, always or never")
        let viaPull = try call(#"{"sandbox":"v","config":{"pull":"often"}}"#, on: d, method: "sandbox.create")
        #expect(viaPull.code == -32602 && viaPull.message == "invalid params: 'pull' must be missing, always or never")
    }

    @Test func neverRefusesAnImageThatIsNotHere() throws {
        let d = dispatcher()
        for key in ["pull_policy", "pull"] {
            let refused = try call(#"{"sandbox":"v","config":{"image":"127.0.0.1:9/none:1","\#(key)":"never"}}"#, on: d)
            #expect(refused.code == -32001)
            #expect(refused.message == "image not found: 127.0.0.1:9/none:1")
            #expect(refused.hint == "pull it with 'msb pull 127.0.0.1:9/none:1' or set pull_policy to missing (msb: --pull missing)")
        }
    }

    @Test func insecureRegistriesOnlyWhereTheOperatorAllowsThem() throws {
        let refused = try call(#"{"sandbox":"v","config":{"image":"127.0.0.1:9/none:1","insecure_registry":true}}"#, on: dispatcher())
        #expect(refused.code == -32004 && refused.message == "pulling over plain HTTP is not allowed on this server")
    }

    @Test func registryAuthTakesBothShapesAndBadOnesAreRefused() throws {
        let d = dispatcher()
        let call = RPCCall(claims: APIKeyClaims(namespace: "*", issuedAt: Date(), expiresAt: nil), params: RPCParams(raw: [:]))
        #expect(try d.imageFetch(call, params(#"{"registry_auth":"me:s3cret:x"}"#)).credentials == "me:s3cret:x")
        #expect(try d.imageFetch(call, params(#"{"registry_auth":{"username":"me","password":"pw"}}"#)).credentials == "me:pw")
        #expect(try d.imageFetch(call, params("{}")).credentials == nil)
        #expect(try d.imageFetch(call, params("{}")).policy == .missing)
        for bad in [#""nocolon""#, #"":pw""#, #"{"username":"a:b","password":"pw"}"#] {
            #expect(throws: MSBError.self) { try d.imageFetch(call, params(#"{"registry_auth":\#(bad)}"#)) }
        }
        let shape = try self.call(#"{"sandbox":"v","config":{"registry_auth":5}}"#, on: d)
        #expect(shape.code == -32602)
    }

    /// What a create stores is the SandboxConfig made from the params: no credentials in it.
    @Test func registryAuthNeverReachesTheStoredConfig() throws {
        let given = try params(#"{"image":"python","pull_policy":"always","registry_auth":{"username":"me","password":"hunter2-secret"}}"#)
        let config = try dispatcher().sandboxConfig(name: "web", given)
        let stored = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        #expect(!stored.contains("hunter2-secret") && !stored.contains("registry_auth") && !stored.contains("always"))
    }

    @Test func aNamespaceKeyDoesNotMoveANameAndAnAdminKeyDoes() throws {
        let d = dispatcher()
        let tenant = RPCCall(claims: APIKeyClaims(namespace: "team", issuedAt: Date(), expiresAt: nil), params: RPCParams(raw: [:]))
        let admin = RPCCall(claims: APIKeyClaims(namespace: "*", issuedAt: Date(), expiresAt: nil), params: RPCParams(raw: [:]))
        #expect(try d.imageFetch(tenant, params("{}")).replaceExisting == false)
        #expect(try d.imageFetch(admin, params("{}")).replaceExisting == true)
    }
}

/// One background fetch per image, waited for a bounded time.
@Suite struct ImageFetchesTests {
    final class Counter: @unchecked Sendable {
        let lock = NSLock()
        var value = 0
        func add() { lock.withLock { value += 1 } }
    }

    @Test func aSlowFetchAnswersNotReadyAndGoesOn() throws {
        let fetches = ImageFetches()
        let runs = Counter()
        let pending = MSBError(.notReady, "image python is being built on first use; retry in a minute")
        #expect(throws: MSBError.self) {
            try fetches.run("python", waitSeconds: 0.1, pending: pending) { runs.add(); usleep(600_000) }
        }
        #expect(fetches.inProgress == ["python"])
        // A second start while it runs waits on the same job, not a new one.
        try fetches.run("python", waitSeconds: 5, pending: pending) { runs.add() }
        #expect(runs.value == 1)
        #expect(fetches.inProgress.isEmpty)
    }

    @Test func concurrentStartsShareOneFetchAndItsFailure() throws {
        let fetches = ImageFetches()
        let runs = Counter()
        let failures = Counter()
        let group = DispatchGroup()
        // Threads of their own: all four ask while the one fetch runs.
        for _ in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                do throws(MSBError) {
                    try fetches.run("node", waitSeconds: 5, pending: MSBError(.notReady, "x")) { () throws(MSBError) in
                        runs.add()
                        usleep(500_000)
                        throw MSBError(.notFound, "no such image")
                    }
                } catch {
                    if error.code == .notFound { failures.add() }
                }
                group.leave()
            }
        }
        group.wait()
        #expect(runs.value == 1)
        #expect(failures.value == 4)
    }
}
