import Foundation
import MSBCore
@testable import MSBServer
import Testing

/// The JSON-RPC layer without HTTP or VMs: envelopes, authentication, namespaces, params
/// and the refusals that happen before any sandbox is touched.
@Suite struct RPCDispatcherTests {
    let home = NSTemporaryDirectory() + "msbsrv-\(UUID().uuidString.prefix(8))"
    let authority = APIKeyAuthority(secret: Data(repeating: 1, count: 32))

    func dispatcher(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> RPCDispatcher {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configure(&configuration)
        return RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                             authority: authority)
    }

    var adminKey: String { "Bearer " + authority.issue(namespace: "*", expiresIn: nil) }

    func call(_ body: String, key: String? = nil, on d: RPCDispatcher? = nil) throws -> (status: Int, json: [String: Any]) {
        let reply = (d ?? dispatcher()).handle(body: Array(body.utf8), authorization: key ?? adminKey)
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
        return (reply.status, json)
    }

    func error(_ response: (status: Int, json: [String: Any])) -> (code: Int, message: String) {
        let object = response.json["error"] as? [String: Any] ?? [:]
        return (object["code"] as? Int ?? 0, object["message"] as? String ?? "")
    }

    func request(_ method: String, _ params: String, id: String = #""r1""#) -> String {
        #"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params),"id":\#(id)}"#
    }

    @Test func malformedEnvelopesGetTheStandardErrors() throws {
        let parse = try call("{not json")
        #expect(parse.status == 400 && error(parse).code == -32700)
        #expect(parse.json["id"] is NSNull)
        let version = try call(#"{"jsonrpc":"1.0","method":"sandbox.list","id":1}"#)
        #expect(version.status == 400 && error(version).code == -32600)
        #expect(error(version).message == #"invalid request: 'jsonrpc' must be "2.0""#)
        #expect(version.json["id"] as? Int == 1)
        let noMethod = try call(#"{"jsonrpc":"2.0","id":"x"}"#)
        #expect(error(noMethod) == (-32600, "invalid request: 'method' must be a string"))
        let unknown = try call(request("sandbox.fly", "{}"))
        #expect(unknown.status == 200 && error(unknown).code == -32601)
        #expect(error(unknown).message == "method not found: sandbox.fly")
        let positional = try call(request("sandbox.stop", #"["a"]"#))
        #expect(error(positional).code == -32602)
        let scalar = try call("42")
        #expect(error(scalar) == (-32600, "invalid request: the request must be a JSON object"))
        let emptyBatch = try call("[]")
        #expect(emptyBatch.status == 400)
    }

    @Test func missingAndInvalidParamsNameTheParameter() throws {
        let missing = try call(request("sandbox.stop", "{}"))
        #expect(error(missing) == (-32602, "invalid params: 'sandbox' is required"))
        let badName = try call(request("sandbox.stop", #"{"sandbox":"../etc"}"#))
        #expect(error(badName) == (-32602, "invalid sandbox name '../etc'"))
        let badType = try call(request("sandbox.stop", #"{"sandbox":5}"#))
        #expect(error(badType) == (-32602, "invalid params: 'sandbox' must be a string"))
        let badNamespace = try call(request("sandbox.list", #"{"namespace":"Team A"}"#))
        #expect(error(badNamespace) == (-32602, "invalid namespace 'Team A'"))
        let badCpus = try call(request("sandbox.start", #"{"sandbox":"a","config":{"cpus":1.5}}"#))
        #expect(error(badCpus) == (-32602, "invalid params: 'cpus' must be a whole number from 1 to 64"))
        let boolMemory = try call(request("sandbox.start", #"{"sandbox":"a","config":{"memory":true}}"#))
        #expect(error(boolMemory) == (-32602, "invalid params: 'memory' must be a number"))
        let language = try call(request("sandbox.repl.run", #"{"sandbox":"a","language":"ruby","code":"1"}"#))
        #expect(error(language) == (-32602, "unsupported language 'ruby': use python or node (nodejs, javascript)"))
        let timeout = try call(request("sandbox.command.run", #"{"sandbox":"a","command":"true","timeout":0}"#))
        #expect(error(timeout) == (-32602, "invalid params: 'timeout' must be a positive number of seconds"))
    }

    @Test func keysAreRequiredCheckedAndScopedToTheirNamespace() throws {
        let body = request("sandbox.list", #"{"namespace":"team-b"}"#)
        let none = dispatcher().handle(body: Array(body.utf8), authorization: nil)
        #expect(none.status == 401)
        #expect(String(decoding: none.body, as: UTF8.self).contains("missing API key"))
        let bad = try call(body, key: "Bearer not-a-key")
        #expect(bad.status == 401 && error(bad).message == "invalid API key")
        #expect(bad.json["id"] as? String == "r1")
        let expired = authority.issue(namespace: "team-b", expiresIn: 10, now: Date().addingTimeInterval(-60))
        let old = try call(body, key: "Bearer " + expired)
        #expect(old.status == 401 && error(old).message.hasPrefix("API key expired at "))
        let teamA = "Bearer " + authority.issue(namespace: "team-a", expiresIn: nil)
        let cross = try call(body, key: teamA)
        #expect(cross.status == 403)
        #expect(error(cross).message == "this API key is for namespace 'team-a' and cannot access namespace 'team-b'")
        let everywhere = try call(request("sandbox.metrics.get", #"{"namespace":"*"}"#), key: teamA)
        #expect(everywhere.status == 403)
        let own = try call(request("sandbox.list", #"{"namespace":"team-a"}"#), key: teamA)
        #expect(own.status == 200 && (own.json["result"] as? [String: Any])?["sandboxes"] as? [Any] != nil)
        let images = try call(request("image.prune", "{}"), key: teamA)
        #expect(images.status == 403 && error(images).message == "pruning images needs an API key for all namespaces")
    }

    @Test func devModeAcceptsRequestsWithoutKeys() throws {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configuration.dev = true
        let dev = RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                                authority: nil)
        let reply = dev.handle(body: Array(request("sandbox.list", "{}").utf8), authorization: nil)
        #expect(reply.status == 200)
    }

    @Test func unknownSandboxesAreClearErrors() throws {
        let stop = try call(request("sandbox.stop", #"{"sandbox":"ghost"}"#))
        #expect(stop.status == 200)
        #expect(error(stop) == (-32001, "sandbox not found: ghost"))
        let data = (stop.json["error"] as? [String: Any])?["data"] as? [String: Any]
        #expect(data?["kind"] as? String == "notFound")
        // As the SDKs' reference answers: no such sandbox, no entries.
        let metrics = try call(request("sandbox.metrics.get", #"{"sandbox":"ghost"}"#))
        #expect(metrics.json["error"] == nil)
        #expect(((metrics.json["result"] as? [String: Any])?["sandboxes"] as? [Any])?.isEmpty == true)
        let none = try call(request("sandbox.metrics.get", #"{"namespace":"default"}"#))
        #expect(((none.json["result"] as? [String: Any])?["sandboxes"] as? [Any])?.isEmpty == true)
    }

    @Test func notificationsGetNoBodyAndBatchesGetOneAnswerEach() throws {
        let notification = dispatcher().handle(body: Array(#"{"jsonrpc":"2.0","method":"sandbox.list","params":{}}"#.utf8),
                                               authorization: adminKey)
        #expect(notification == RPCReply(status: 204, body: []))
        let batch = dispatcher().handle(body: Array("[\(request("sandbox.list", "{}", id: "1")),\(request("nope", "{}", id: "2"))]".utf8),
                                        authorization: adminKey)
        let answers = try JSONSerialization.jsonObject(with: Data(batch.body)) as? [[String: Any]] ?? []
        #expect(answers.count == 2)
        #expect(answers[0]["result"] != nil && answers[1]["error"] != nil)
    }

    @Test func hostPathsAndPortsNeedTheOperatorsAllowList() throws {
        let d = dispatcher { $0.volumeAllowList = ["/srv/data"]; $0.portAllowList = [PortAllowance(ports: 80...80)] }
        let etc = try call(request("sandbox.start", #"{"sandbox":"v","config":{"volumes":["/etc:/mnt"]}}"#), on: d)
        #expect(etc.status == 403)
        #expect(error(etc).message == "mounting host path /etc is not allowed on this server")
        // Dots never reach the allow-list: the spec itself is refused (VolumeRPCTests has the rest).
        let dotted = try call(request("sandbox.start", #"{"sandbox":"v","config":{"volumes":["/srv/data/../../etc:/mnt"]}}"#), on: d)
        #expect(error(dotted).code == -32602)
        let port = try call(request("sandbox.start", #"{"sandbox":"v","config":{"ports":["22:22"]}}"#), on: d)
        #expect(port.status == 403 && error(port).message == "port 22 is not allowed by this server (--allow-port)")
        let badPort = try call(request("sandbox.start", #"{"sandbox":"v","config":{"ports":["http"]}}"#), on: d)
        #expect(error(badPort).code == -32602)
    }

    @Test func limitsRefuseBootsThatDoNotFit() throws {
        let d = dispatcher { $0.limits.maxTotalMemoryMiB = 256 }
        let big = try call(request("sandbox.start", #"{"sandbox":"big","config":{"memory":512}}"#), on: d)
        #expect(error(big).code == -32007)
        #expect(error(big).message == "server limit reached: 512 MiB more would exceed the 256 MiB of memory allowed to running sandboxes (0 MiB in use)")
    }

    @Test func concurrentBootsCannotOvershootTheLimits() throws {
        var limits = ServerLimits()
        limits.maxTotalMemoryMiB = 300
        let host = SandboxHost(paths: MSBPaths(environment: ["MSB_HOME": home]), limits: limits)
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? host.withCapacity(for: SandboxConfig(name: "one", memoryMiB: 200), namespace: "default") { () throws(MSBError) in
                entered.signal()
                release.wait()
            }
        }
        entered.wait()
        #expect(throws: MSBError.self) {
            try host.withCapacity(for: SandboxConfig(name: "two", memoryMiB: 200), namespace: "default") { () throws(MSBError) in }
        }
        release.signal()
        usleep(100_000)
        // Once the first boot is done its reservation is gone (it never really ran).
        try host.withCapacity(for: SandboxConfig(name: "three", memoryMiB: 200), namespace: "default") { () throws(MSBError) in }
    }
}

/// Images are shared by every namespace: a namespace key may add one, but only a key for
/// all namespaces may move a name that exists (a re-pull would change it for every tenant).
@Suite struct SharedImageNameTests {
    let home = NSTemporaryDirectory() + "msbimg-\(UUID().uuidString.prefix(8))"
    let authority = APIKeyAuthority(secret: Data(repeating: 2, count: 32))

    @Test func onlyAnAdminKeyMovesAnExistingName() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let paths = MSBPaths(environment: ["MSB_HOME": home])
        // An image stored under a reference's name (the old layout; the store adopts it).
        let reference = "127.0.0.1:9/team/tool:1"
        let directory = paths.images + "/" + reference.replacingOccurrences(of: "/", with: "%2F")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: directory + "/rootfs.ext4", contents: Data("disk".utf8))
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        try JSONEncoder.msb.encode(ImageInfo(name: reference, kind: "disk", digest: digest, sizeBytes: 4, createdAt: Date(),
                                             environment: [], workingDirectory: "/", source: "test"))
            .write(to: URL(fileURLWithPath: directory + "/image.json"))
        let configuration = ServerConfiguration(paths: paths)
        let dispatcher = RPCDispatcher(configuration: configuration, host: SandboxHost(paths: paths, limits: configuration.limits),
                                       authority: authority)
        let body = Array(#"{"jsonrpc":"2.0","method":"image.pull","params":{"reference":"\#(reference)","namespace":"team-a"},"id":1}"#.utf8)

        // team-a gets the image as it is; nothing is fetched (127.0.0.1:9 would refuse).
        let tenant = dispatcher.handle(body: body, authorization: "Bearer " + authority.issue(namespace: "team-a", expiresIn: nil))
        let result = try JSONSerialization.jsonObject(with: Data(tenant.body)) as? [String: Any]
        let image = (result?["result"] as? [String: Any])?["image"] as? [String: Any]
        #expect(tenant.status == 200, "\(String(decoding: tenant.body, as: UTF8.self))")
        #expect(image?["digest"] as? String == digest)

        // An admin key really pulls again (and here meets the closed port).
        let admin = dispatcher.handle(body: body, authorization: "Bearer " + authority.issue(namespace: "*", expiresIn: nil))
        let text = String(decoding: admin.body, as: UTF8.self)
        #expect(text.contains("cannot reach registry 127.0.0.1"), "\(text)")
    }
}
