import Foundation
import MSBCore
@testable import MSBServer
import NIOCore
import NIOEmbedded
import Testing

/// The server's guards at their seams: output caps, key revocation, per-namespace slots,
/// connection caps, the transport rule, host paths kept from clients, escaped log lines.
@Suite struct ServerGuardTests {
    let home = NSTemporaryDirectory() + "msbguard-\(UUID().uuidString.prefix(8))"
    let authority = APIKeyAuthority(secret: Data(repeating: 2, count: 32))

    func request(_ method: String, _ params: String) -> [UInt8] {
        Array(#"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params),"id":"g1"}"#.utf8)
    }

    func json(_ reply: RPCReply) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any]) ?? [:]
    }

    func errorObject(_ reply: RPCReply) -> [String: Any] { json(reply)["error"] as? [String: Any] ?? [:] }

    // MARK: Output (hole 6)

    /// `yes '' | head -c N` is N empty lines: the line cap holds, the note says so, and the
    /// bytes after the cut are counted, not kept.
    @Test func millionsOfEmptyLinesAreCutByTheLineCap() {
        let output = OutputCollector(limitBytes: 16 << 20, limitLines: 1000)
        let chunk = [UInt8](repeating: 10, count: 64 << 10)
        for _ in 0..<64 { output.append(.stdout, chunk) }  // 4 MiB of newlines, as 64 KiB frames
        output.append(.stderr, Array("warning\n".utf8))
        let lines = output.lines()
        #expect(lines.filter { $0["stream"] == "stdout" }.count == 1000)
        #expect(lines.contains(["stream": "stderr", "text": "warning"]))
        #expect(lines.last == ["stream": "stderr", "text": "msb: stdout cut after 1000 lines (\((4 << 20) - 1000) more bytes not kept)"])
    }

    @Test func aLineSplitAcrossChunksIsOneLineAndBothCapsCount() {
        let output = OutputCollector(limitBytes: 10, limitLines: 5)
        output.append(.stdout, Array("ab".utf8))
        output.append(.stdout, Array("c\nde".utf8))
        output.append(.stdout, Array("f\n0123456789".utf8))
        let lines = output.lines()
        #expect(lines.prefix(3) == [["stream": "stdout", "text": "abc"], ["stream": "stdout", "text": "def"],
                                    ["stream": "stdout", "text": "01"]])
        #expect(lines.last == ["stream": "stderr", "text": "msb: stdout cut after 10 bytes (8 more bytes not kept)"])
    }

    // MARK: Keys

    @Test func revokedUnknownAndListedKeys() throws {
        let registry = APIKeyRegistry(serverDirectory: home + "/server")
        let now = Date()
        try registry.add(APIKeyRecord(id: "aaaa", namespace: "team-a", created_at: "2026-11-25T00:00:00Z", expires_at: nil))
        let known = APIKeyClaims(namespace: "team-a", issuedAt: now, expiresAt: nil, id: "aaaa")
        try registry.check(known)
        #expect(throws: MSBError.self) { try registry.check(APIKeyClaims(namespace: "*", issuedAt: now, expiresAt: nil, id: "bbbb")) }
        #expect(throws: MSBError.self) { try registry.check(APIKeyClaims(namespace: "*", issuedAt: now, expiresAt: nil, id: nil)) }
        let revoked = try registry.revoke("aaaa", now: Date(timeIntervalSince1970: 0))
        #expect(revoked.revoked_at == "1970-01-01T00:00:00Z")
        do {
            try registry.check(known)
            Issue.record("a revoked key was accepted")
        } catch {
            #expect(error.message == "API key aaaa was revoked at 1970-01-01T00:00:00Z" && error.code == .accessDenied)
        }
        #expect(throws: MSBError.self) { try registry.revoke("nope") }
        #expect(try registry.records().map(\.id) == ["aaaa"])
        let mode = (try FileManager.default.attributesOfItem(atPath: registry.path)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
    }

    /// Through the dispatcher: a revoked key is 401 with the reason, on the next request.
    @Test func theDispatcherChecksRevocationOnEveryRequest() throws {
        let configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        let keys = APIKeyRegistry(serverDirectory: home + "/server")
        let dispatcher = RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                                       authority: authority, keys: keys)
        try keys.add(APIKeyRecord(id: "k1", namespace: "*", created_at: "2026-11-25T00:00:00Z"))
        let key = "Bearer " + authority.issue(namespace: "*", expiresIn: nil, id: "k1")
        #expect(dispatcher.handle(body: request("sandbox.list", "{}"), authorization: key).status == 200)
        try keys.revoke("k1")
        let refused = dispatcher.handle(body: request("sandbox.list", "{}"), authorization: key)
        #expect(refused.status == 401)
        #expect((errorObject(refused)["message"] as? String)?.hasPrefix("API key k1 was revoked at ") == true)
        let stranger = "Bearer " + authority.issue(namespace: "*", expiresIn: nil, id: "never-recorded")
        #expect(errorObject(dispatcher.handle(body: request("sandbox.list", "{}"), authorization: stranger))["message"] as? String
                == "API key never-recorded is not known to this server")
    }

    // MARK: Per-namespace limits

    @Test func aNamespaceAtItsCallLimitIsRefusedAndOthersAreNot() throws {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configuration.limits.maxCallsPerNamespace = 1
        let host = SandboxHost(paths: configuration.paths, limits: configuration.limits)
        let dispatcher = RPCDispatcher(configuration: configuration, host: host, authority: nil)
        try host.calls.withSlot("team-a") { () throws(MSBError) in
            let busy = dispatcher.handle(body: request("sandbox.list", #"{"namespace":"team-a"}"#), authorization: nil)
            #expect(busy.status == 429)
            #expect(errorObject(busy)["code"] as? Int == -32008)
            #expect(errorObject(busy)["message"] as? String
                    == "namespace team-a already has 1 calls running, the most this server allows one namespace")
            #expect(dispatcher.handle(body: request("sandbox.list", #"{"namespace":"team-b"}"#), authorization: nil).status == 200)
        }
        #expect(host.calls.count("team-a") == 0)
        #expect(dispatcher.handle(body: request("sandbox.list", #"{"namespace":"team-a"}"#), authorization: nil).status == 200)
        #expect(MSBError.Code.rateLimited.edges.exitCode == 75)
    }

    @Test func aNamespaceCannotBootMoreThanItsShare() throws {
        var limits = ServerLimits()
        limits.maxSandboxesPerNamespace = 1
        let host = SandboxHost(paths: MSBPaths(environment: ["MSB_HOME": home]), limits: limits)
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? host.withCapacity(for: SandboxConfig(name: "one"), namespace: "team-a") { () throws(MSBError) in
                entered.signal()
                release.wait()
            }
        }
        entered.wait()
        do {
            try host.withCapacity(for: SandboxConfig(name: "two"), namespace: "team-a") { () throws(MSBError) in }
            Issue.record("a second boot in team-a was allowed")
        } catch {
            #expect(error.message == "namespace limit reached: at most 1 sandboxes may run at once in namespace team-a")
        }
        try host.withCapacity(for: SandboxConfig(name: "two"), namespace: "team-b") { () throws(MSBError) in }
        release.signal()
    }

    // MARK: Connections

    @Test func atTheCapTheLongestIdleConnectionMakesRoom() throws {
        let tracker = ConnectionTracker(maxConnections: 2, maxAttachSessions: 1)
        let first = EmbeddedChannel(), second = EmbeddedChannel(), third = EmbeddedChannel(), fourth = EmbeddedChannel()
        try first.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let start = NIODeadline.now()
        #expect(tracker.admit(first, now: start))
        #expect(tracker.admit(second, now: start + .seconds(1)))
        tracker.setBusy(second, true)
        #expect(tracker.admit(third, now: start + .seconds(2)))  // first was idle longest
        #expect(!first.isActive && tracker.connections == 2)
        tracker.setBusy(third, true)
        #expect(!tracker.admit(fourth))  // every connection runs a request
        #expect(tracker.reserveAttach() && !tracker.reserveAttach())
        tracker.releaseAttach()
        #expect(tracker.reserveAttach())
    }

    @Test func plainHTTPOffLoopbackNeedsTLSOrTheExplicitFlag() throws {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        try configuration.checkTransport()
        configuration.host = "0.0.0.0"
        do {
            try configuration.checkTransport()
            Issue.record("plain HTTP on 0.0.0.0 was allowed")
        } catch {
            #expect(error.message == "refusing to serve plain HTTP on 0.0.0.0: API keys and sandbox I/O would cross the network unencrypted")
            #expect(error.code.edges.exitCode == 2)
        }
        configuration.insecureHTTP = true
        try configuration.checkTransport()
        configuration.insecureHTTP = false
        configuration.tls = .init(certificatePath: "/c.pem", keyPath: "/k.pem")
        try configuration.checkTransport()
        #expect(ServerConfiguration.isLoopback("127.1.2.3") && ServerConfiguration.isLoopback("::1"))
        #expect(!ServerConfiguration.isLoopback("10.0.0.1") && !ServerConfiguration.isLoopback("::"))
    }

    // MARK: Hole 11: host paths and log lines

    @Test func remoteClientsNeverSeeHostPaths() throws {
        // A namespace whose database cannot be opened: the error names the file.
        try FileManager.default.createDirectory(atPath: home + "/namespaces/team-a/state.db", withIntermediateDirectories: true)
        let configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        let dispatcher = RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                                       authority: nil)
        let reply = dispatcher.handle(body: request("sandbox.list", #"{"namespace":"team-a"}"#), authorization: nil)
        let message = errorObject(reply)["message"] as? String ?? ""
        #expect(message.hasPrefix("cannot open state database <namespaces>/team-a/state.db"), "\(message)")
        #expect(!String(decoding: reply.body, as: UTF8.self).contains(home))

        let redact = HostPathRedactor(paths: configuration.paths)
        let error = redact.error(MSBError(.stateStore, "cannot read \(home)/images/x/image.json",
                                          cause: SendableErrorDescription("The file “/etc/shadow” couldn’t be opened")))
        #expect(error.description == "cannot read <images>/x/image.json: The file “<path>” couldn’t be opened")
    }

    @Test func accessLogLinesCannotBeForged() throws {
        let lines = LogLines()
        let configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        let dispatcher = RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                                       authority: nil, log: { lines.append($0) })
        let forged = #"x ok 1ms\n2026-01-01T00:00:00Z sandbox.remove ns=team-b sandbox=prod ok 3ms"#
        _ = dispatcher.handle(body: request("sandbox.stop", #"{"namespace":"a\u0085b","sandbox":"\#(forged)"}"#), authorization: nil)
        let logged = lines.all
        #expect(logged.count == 1)
        #expect(!logged[0].contains("\n") && !logged[0].contains("\u{85}"))
        #expect(logged[0].contains(#"sandbox="x ok 1ms\n2026-01-01T00:00:00Z sandbox.remove"#), "\(logged[0])")
        #expect(logged[0].contains(#"ns="a\u0085b""#))
        #expect(LogText.field("team-a") == "team-a" && LogText.field("a b") == #""a b""#)
    }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
