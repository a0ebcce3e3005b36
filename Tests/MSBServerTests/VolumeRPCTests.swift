import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// `volume.*` and `config.volumes` without VMs: a namespace sees only its own volumes,
/// remote users never see host paths, and host directories are 403 outside `--allow-volume`,
/// where links lead included.
@Suite struct VolumeRPCTests {
    let home: String
    let allowed: String
    let authority = APIKeyAuthority(secret: Data(repeating: 2, count: 32))

    init() throws {
        let scratch = NSTemporaryDirectory() + "msbvolrpc-\(UUID().uuidString.prefix(8))"
        home = scratch + "/home"
        allowed = scratch + "/shared"
        let fm = FileManager.default
        try fm.createDirectory(atPath: allowed + "/project", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: scratch + "/secret", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: allowed + "/escape", withDestinationPath: scratch + "/secret")
        try fm.createSymbolicLink(atPath: allowed + "/up", withDestinationPath: "..")
        try fm.createSymbolicLink(atPath: allowed + "/inside", withDestinationPath: allowed + "/project")
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: (home as NSString).deletingLastPathComponent) }

    func dispatcher(keys: Bool = false, _ configure: (inout ServerConfiguration) -> Void = { _ in }) -> RPCDispatcher {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configuration.volumeAllowList = [allowed]
        configure(&configuration)
        return RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                             authority: keys ? authority : nil)
    }

    func call(_ method: String, _ params: String, key: String? = nil, on d: RPCDispatcher) throws
        -> (status: Int, result: Any?, code: Int, message: String) {
        let body = #"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params),"id":"v1"}"#
        let reply = d.handle(body: Array(body.utf8), authorization: key)
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
        let error = json["error"] as? [String: Any] ?? [:]
        return (reply.status, json["result"], error["code"] as? Int ?? 0, error["message"] as? String ?? "")
    }

    func config(_ json: String, on d: RPCDispatcher) throws -> SandboxConfig {
        try d.sandboxConfig(name: "web", JSONDecoder().decode(RPC.SandboxConfigParams.self, from: Data(json.utf8)))
    }

    @Test func theMethodsExist() {
        for name in ["volume.create", "volume.list", "volume.inspect", "volume.remove"] {
            #expect(RPCDispatcher.methods[name] != nil, "\(name)")
        }
    }

    @Test func aNamespaceSeesAndRemovesOnlyItsOwnVolumes() throws {
        defer { cleanUp() }
        let d = dispatcher()
        let created = try call("volume.create", #"{"volume":"data","namespace":"team-a"}"#, on: d)
        let volume = (created.result as? [String: Any])?["volume"] as? [String: Any]
        #expect(volume?["name"] as? String == "data" && volume?["namespace"] as? String == "team-a")
        #expect(volume?["host_path"] == nil, "a remote user saw a host path")
        #expect(FileManager.default.fileExists(atPath: home + "/namespaces/team-a/volumes/data/data"))

        let listA = try call("volume.list", #"{"namespace":"team-a"}"#, on: d)
        #expect(((listA.result as? [String: Any])?["volumes"] as? [[String: Any]])?.map { $0["name"] as? String } == ["data"])
        let listB = try call("volume.list", #"{"namespace":"team-b"}"#, on: d)
        #expect(((listB.result as? [String: Any])?["volumes"] as? [Any])?.isEmpty == true)
        for method in ["volume.inspect", "volume.remove"] {
            let other = try call(method, #"{"volume":"data","namespace":"team-b"}"#, on: d)
            #expect(other.code == -32001 && other.message == "volume not found: data", "\(method)")
        }
        let inspect = try call("volume.inspect", #"{"volume":"data","namespace":"team-a"}"#, on: d)
        let inspected = (inspect.result as? [String: Any])?["volume"] as? [String: Any]
        #expect(inspected?["host_path"] == nil && inspected?["size_bytes"] as? Int == 0 && inspected?["used_by"] as? [String] == [])
        // team-b makes its own "data": another directory, in its own home.
        _ = try call("volume.create", #"{"volume":"data","namespace":"team-b"}"#, on: d)
        #expect(FileManager.default.fileExists(atPath: home + "/namespaces/team-b/volumes/data/data"))
        let removed = try call("volume.remove", #"{"volume":"data","namespace":"team-a"}"#, on: d)
        #expect(removed.result as? String == "Volume data removed successfully")
        #expect(FileManager.default.fileExists(atPath: home + "/namespaces/team-b/volumes/data/data"))
    }

    @Test func aKeyOfOneNamespaceCannotReachAnothersVolumes() throws {
        defer { cleanUp() }
        let d = dispatcher(keys: true)
        let key = "Bearer " + authority.issue(namespace: "team-a", expiresIn: nil)
        let other = try call("volume.list", #"{"namespace":"team-b"}"#, key: key, on: d)
        #expect(other.status == 403 && other.code == -32004)
        #expect(try call("volume.create", #"{"volume":"x","namespace":"team-a"}"#, key: key, on: d).code == 0)
    }

    @Test func namesAndLimitsAreCheckedBeforeAnythingIsTouched() throws {
        defer { cleanUp() }
        let d = dispatcher { $0.limits.maxVolumesPerNamespace = 1 }
        for bad in ["../../etc", ".x", "a/b", ""] {
            let refused = try call("volume.create", #"{"volume":"\#(bad)"}"#, on: d)
            #expect(refused.code == -32602 && refused.message == "invalid volume name '\(bad)'", "\(bad)")
        }
        #expect(try call("volume.create", #"{}"#, on: d).message == "invalid params: 'volume' is required")
        _ = try call("volume.create", #"{"volume":"one"}"#, on: d)
        let full = try call("volume.create", #"{"volume":"two"}"#, on: d)
        #expect(full.code == -32007 && full.message == "volume limit reached: at most 1 volumes may be kept")
        let badMount = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":["a/b:/data"]}}"#, on: d)
        #expect(badMount.code == -32602)
    }

    @Test func hostDirectoriesInsideTheAllowListAreStoredWhereTheyLead() throws {
        defer { cleanUp() }
        let d = dispatcher()
        let root = try VolumeMount.resolvedHostDirectory(allowed)
        let project = try config(#"{"volumes":["\#(allowed)/project:/src:ro","cache:/cache"]}"#, on: d)
        #expect(project.volumes == [VolumeMount(source: .hostPath(root + "/project"), guestPath: "/src", readOnly: true),
                                    VolumeMount(source: .named("cache"), guestPath: "/cache", readOnly: false)])
        let linked = try config(#"{"volumes":["\#(allowed)/inside:/src"]}"#, on: d)
        #expect(linked.volumes?.first?.source == .hostPath(root + "/project"))
        #expect(try config(#"{"image":"python"}"#, on: d).volumes == nil)
        // What the CLI's remote backend sends for `create -v`.
        var local = SandboxConfig(name: "web")
        local.volumes = project.volumes
        #expect(try d.sandboxConfig(name: "web", RPC.SandboxConfigParams(local)).volumes == project.volumes)
    }

    @Test func hostDirectoriesOutsideTheAllowListAre403() throws {
        defer { cleanUp() }
        let d = dispatcher()
        let etc = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":["/etc:/mnt"]}}"#, on: d)
        #expect(etc.status == 403 && etc.code == -32004 && etc.message == "mounting host path /etc is not allowed on this server")
        for link in ["escape", "up"] {
            let refused = try call("sandbox.create", #"{"sandbox":"v","config":{"volumes":["\#(allowed)/\#(link):/mnt"]}}"#, on: d)
            #expect(refused.status == 403, "\(link)")
            // The path as the client gave it, never where the link led.
            #expect(refused.message == "mounting host path \(allowed)/\(link) is not allowed on this server")
        }
        let dotted = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":["\#(allowed)/../secret:/mnt"]}}"#, on: d)
        #expect(dotted.code == -32602)
        let missing = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":["\#(allowed)/none:/mnt"]}}"#, on: d)
        #expect(missing.code == -32602 && missing.message == "volume source is not a directory: \(allowed)/none")
        let none = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":["\#(allowed)/project:/mnt"]}}"#,
                            on: dispatcher { $0.volumeAllowList = [] })
        #expect(none.status == 403)
        // Named volumes need no allowance.
        #expect(try config(#"{"volumes":["data:/data"]}"#, on: dispatcher { $0.volumeAllowList = [] }).volumes?.count == 1)
    }

    /// An operator who allowed a directory around msb's own home: the home is still refused.
    @Test func theServersOwnStateIsNeverMounted() throws {
        defer { cleanUp() }
        let scratch = (home as NSString).deletingLastPathComponent
        let d = dispatcher { $0.volumeAllowList = [scratch] }
        try FileManager.default.createDirectory(atPath: home + "/namespaces", withIntermediateDirectories: true)
        for path in [scratch, home, home + "/namespaces"] {
            let refused = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":["\#(path):/mnt"]}}"#, on: d)
            #expect(refused.status == 403, "\(path)")
            #expect(refused.message.hasSuffix("is not allowed on this server: it holds msb's own state"), "\(path)")
        }
        #expect(try config(#"{"volumes":["\#(allowed)/project:/src"]}"#, on: d).volumes?.count == 1)
    }

    @Test func volumesWithSnapshotsAndTooManyAreRefused() throws {
        defer { cleanUp() }
        let d = dispatcher()
        let fork = try call("sandbox.start", #"{"sandbox":"v","config":{"snapshot":"ready","volumes":["data:/data"]}}"#, on: d)
        #expect(fork.code == -32602)
        #expect(fork.message == "invalid params: 'snapshot' cannot be combined with 'volumes': snapshots cannot carry volumes")
        let nine = "[" + (1...9).map { "\"v\($0):/d\($0)\"" }.joined(separator: ",") + "]"
        let many = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":\#(nine)}}"#, on: d)
        #expect(many.code == -32602 && many.message == "invalid params: at most 8 'volumes'")
        let overlap = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":["a:/d","b:/d/e"]}}"#, on: d)
        #expect(overlap.code == -32602 && overlap.message == "volumes overlap in the guest: /d and /d/e")
        let notStrings = try call("sandbox.start", #"{"sandbox":"v","config":{"volumes":[1]}}"#, on: d)
        #expect(notStrings.code == -32602 && notStrings.message == "invalid params: 'volumes' must be a list of strings")
    }
}
