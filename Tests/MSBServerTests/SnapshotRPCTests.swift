import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// `sandbox.snapshot.*` and `config.snapshot` without VMs: the methods exist, names are
/// checked before anything is touched, a namespace keeps at most its share of snapshots,
/// and a fork is held to the limits at the snapshot's size.
@Suite struct SnapshotRPCTests {
    let home = NSTemporaryDirectory() + "msbsnap-\(UUID().uuidString.prefix(8))"

    func dispatcher(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> RPCDispatcher {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configure(&configuration)
        return RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                             authority: nil)
    }

    func call(_ method: String, _ params: String, on d: RPCDispatcher? = nil) throws -> (result: Any?, code: Int, message: String) {
        let body = #"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params),"id":"s1"}"#
        let reply = (d ?? dispatcher()).handle(body: Array(body.utf8), authorization: nil)
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
        let error = json["error"] as? [String: Any] ?? [:]
        return (json["result"], error["code"] as? Int ?? 0, error["message"] as? String ?? "")
    }

    @Test func theMethodsExist() {
        for name in ["sandbox.snapshot.create", "sandbox.snapshot.list", "sandbox.snapshot.remove"] {
            #expect(RPCDispatcher.methods[name] != nil, "\(name)")
        }
    }

    @Test func namesAreCheckedBeforeAnythingIsTouched() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let badSnapshot = try call("sandbox.snapshot.create", #"{"sandbox":"web","snapshot":"../../etc"}"#)
        #expect(badSnapshot.code == -32602 && badSnapshot.message == "invalid snapshot name '../../etc'")
        let badSandbox = try call("sandbox.snapshot.create", #"{"sandbox":"a/b","snapshot":"s"}"#)
        #expect(badSandbox.code == -32602 && badSandbox.message == "invalid sandbox name 'a/b'")
        let missing = try call("sandbox.snapshot.create", #"{"sandbox":"web"}"#)
        #expect(missing.code == -32602 && missing.message == "invalid params: 'snapshot' is required")
        let notString = try call("sandbox.snapshot.remove", #"{"snapshot":7}"#)
        #expect(notString.code == -32602 && notString.message == "invalid params: 'snapshot' must be a string")
        let badRemove = try call("sandbox.snapshot.remove", #"{"snapshot":".hidden"}"#)
        #expect(badRemove.code == -32602)
        let badNamespace = try call("sandbox.snapshot.list", #"{"namespace":"../x"}"#)
        #expect(badNamespace.code == -32602)
        let badConfig = try call("sandbox.start", #"{"sandbox":"fork","config":{"snapshot":"a b"}}"#)
        #expect(badConfig.code == -32602 && badConfig.message == "invalid snapshot name 'a b'")
    }

    @Test func listAndRemoveInAnEmptyNamespace() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let list = try call("sandbox.snapshot.list", #"{"namespace":"team-a"}"#)
        #expect((list.result as? [String: Any])?["snapshots"] as? [Any] != nil)
        let remove = try call("sandbox.snapshot.remove", #"{"snapshot":"ghost","namespace":"team-a"}"#)
        #expect(remove.code == -32001 && remove.message == "snapshot not found: ghost")
    }

    /// A fork takes the snapshot's image, memory and cpus: a client cannot name its own.
    @Test func snapshotConfigsNameNoImageMemoryOrCpus() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let memory = try call("sandbox.start", #"{"sandbox":"fork","config":{"snapshot":"ready","memory":64}}"#)
        #expect(memory.code == -32602)
        #expect(memory.message == "invalid params: 'snapshot' takes the image, memory and cpus of the snapshot; drop 'memory'")
        let all = try call("sandbox.create", #"{"sandbox":"fork","config":{"snapshot":"ready","image":"base","cpus":1,"memory":64}}"#)
        #expect(all.message.hasSuffix("drop 'image', 'memory', 'cpus'"))
        let ghost = try call("sandbox.create", #"{"sandbox":"fork","config":{"snapshot":"ghost"}}"#)
        #expect(ghost.code == -32001 && ghost.message == "snapshot not found: ghost")

        // What the CLI's remote backend sends for `create --from`.
        var config = SandboxConfig(name: "fork")
        config.snapshot = "ready"
        let sent = try JSONSerialization.jsonObject(with: JSONEncoder().encode(RPC.SandboxConfigParams(config))) as? [String: Any] ?? [:]
        #expect(sent["snapshot"] as? String == "ready")
        #expect(sent["image"] == nil && sent["memory"] == nil && sent["cpus"] == nil)
    }

    @Test func aForkIsCountedAtTheSnapshotsSize() throws {
        var limits = ServerLimits()
        limits.maxTotalMemoryMiB = 1000
        let host = SandboxHost(paths: MSBPaths(environment: ["MSB_HOME": home]), limits: limits)
        var config = SandboxConfig(name: "fork", memoryMiB: 64)
        config.adopt(SnapshotInfo(name: "big", source: "web", image: "python", imageDigest: "sha256:00", cpus: 2, memoryMiB: 2048,
                                  createdAt: Date(), sizeBytes: 0))
        #expect(config.memoryMiB == 2048 && config.cpus == 2 && config.image == "python" && config.snapshot == "big")
        do {
            try host.withCapacity(for: config, namespace: "default") { () throws(MSBError) in }
            Issue.record("a fork of a 2048 MiB snapshot fit in 1000 MiB")
        } catch {
            #expect(error.code == .limitExceeded && error.message.hasPrefix("server limit reached: 2048 MiB more"))
        }
    }

    @Test func aNamespaceKeepsAtMostItsShareOfSnapshots() throws {
        var limits = ServerLimits()
        limits.maxSnapshotsPerNamespace = 2
        let host = SandboxHost(paths: MSBPaths(environment: ["MSB_HOME": home]), limits: limits)
        let refusal = "namespace limit reached: at most 2 snapshots may be kept in namespace team-a"
        do {
            try host.withSnapshotRoom(namespace: "team-a", existing: { () throws(MSBError) in 2 }) { () throws(MSBError) in }
            Issue.record("a third snapshot was allowed")
        } catch {
            #expect(error.code == .limitExceeded && error.message == refusal)
            #expect(error.hint == "remove a snapshot first ('msb snapshot rm')")
        }

        // One create in flight with one snapshot kept: a concurrent second create would be the third.
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? host.withSnapshotRoom(namespace: "team-a", existing: { () throws(MSBError) in 1 }) { () throws(MSBError) in
                entered.signal()
                release.wait()
            }
        }
        entered.wait()
        do {
            try host.withSnapshotRoom(namespace: "team-a", existing: { () throws(MSBError) in 1 }) { () throws(MSBError) in }
            Issue.record("two concurrent creates overshot the limit")
        } catch {
            #expect(error.message == refusal)
        }
        try host.withSnapshotRoom(namespace: "team-b", existing: { () throws(MSBError) in 1 }) { () throws(MSBError) in }
        release.signal()
        usleep(100_000)
        // The first create is done (here it made nothing): its share is free again.
        try host.withSnapshotRoom(namespace: "team-a", existing: { () throws(MSBError) in 1 }) { () throws(MSBError) in }
    }

    @Test func theDispatcherChecksTheLimitBeforeTheBackend() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let d = dispatcher { $0.limits.maxSnapshotsPerNamespace = 0 }
        let full = try call("sandbox.snapshot.create", #"{"sandbox":"web","snapshot":"ready"}"#, on: d)
        #expect(full.code == -32007)
        #expect(full.message == "namespace limit reached: at most 0 snapshots may be kept in namespace default")
    }
}
