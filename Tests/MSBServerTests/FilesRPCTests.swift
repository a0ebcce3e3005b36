import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// `sandbox.fs.*` through the dispatcher to sandboxes in memory (`FakeSandboxes`, whose
/// guest files answer as the agent does): base64 bodies, ranged reads and writes, params
/// checked before anything reaches a sandbox, errors with their kind.
@Suite struct FilesRPCTests {
    let home = NSTemporaryDirectory() + "msbfs-\(UUID().uuidString.prefix(8))"
    let authority = APIKeyAuthority(secret: Data(repeating: 5, count: 32))
    let sandboxes = FakeSandboxes(["default": ["web"]])

    var dispatcher: RPCDispatcher {
        let configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        return RPCDispatcher(configuration: configuration, host: sandboxes.host(home: home, limits: configuration.limits), authority: authority)
    }

    struct Answer {
        var result: [String: Any]?
        var code: Int?
        var message: String?
        var kind: String?
    }

    func call(_ method: String, _ params: [String: Any]) throws -> Answer {
        var params = params
        params["sandbox"] = params["sandbox"] ?? "web"
        let body = try JSONSerialization.data(withJSONObject: ["jsonrpc": "2.0", "method": method, "params": params, "id": 1])
        let reply = dispatcher.handle(body: Array(body), authorization: "Bearer " + authority.issue(namespace: "*", expiresIn: nil))
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
        let error = json["error"] as? [String: Any]
        return Answer(result: json["result"] as? [String: Any], code: error?["code"] as? Int, message: error?["message"] as? String,
                      kind: (error?["data"] as? [String: Any])?["kind"] as? String)
    }

    @Test func aBinaryFileRoundTripsInRanges() throws {
        let bytes = (0..<(GuestFileOperation.maxChunkBytes + 1000)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let first = Data(bytes[..<GuestFileOperation.maxChunkBytes]).base64EncodedString()
        let rest = Data(bytes[GuestFileOperation.maxChunkBytes...]).base64EncodedString()
        // /root does not exist yet: nothing is written.
        let wrote = try call("sandbox.fs.write", ["path": "/root/blob.bin", "content": first, "mode": 0o600])
        #expect(wrote.kind == "notFound", "\(wrote.message ?? "")")
        #expect(sandboxes.disk.file("/root/blob.bin") == nil)
        _ = try call("sandbox.fs.mkdir", ["path": "/root"])
        _ = try call("sandbox.fs.write", ["path": "/root/blob.bin", "content": first])
        let appended = try call("sandbox.fs.write", ["path": "/root/blob.bin", "content": rest, "offset": GuestFileOperation.maxChunkBytes])
        #expect(appended.result?["size"] as? Int == bytes.count)
        #expect(sandboxes.disk.file("/root/blob.bin") == bytes)

        let head = try call("sandbox.fs.read", ["path": "/root/./blob.bin"])
        #expect(head.result?["size"] as? Int == bytes.count && head.result?["eof"] as? Bool == false)
        #expect(head.result?["path"] as? String == "/root/blob.bin")
        let tail = try call("sandbox.fs.read", ["path": "/root/blob.bin", "offset": GuestFileOperation.maxChunkBytes])
        #expect(tail.result?["eof"] as? Bool == true)
        let read = [head, tail].compactMap { ($0.result?["content"] as? String).flatMap { Data(base64Encoded: $0) } }
        #expect(read.reduce(Data(), +) == Data(bytes))
    }

    @Test func listStatRenameAndRemove() throws {
        _ = try call("sandbox.fs.mkdir", ["path": "/srv/data", "parents": false])
        #expect(try call("sandbox.fs.mkdir", ["path": "/srv"]).code == nil)
        _ = try call("sandbox.fs.write", ["path": "/srv/a.txt", "content": Data("hello".utf8).base64EncodedString()])
        let listed = try call("sandbox.fs.list", ["path": "/srv"])
        let entries = listed.result?["entries"] as? [[String: Any]] ?? []
        #expect(entries.map { $0["name"] as? String } == ["a.txt"])
        #expect(entries.first?["type"] as? String == "file" && entries.first?["size"] as? Int == 5)
        let stat = try call("sandbox.fs.stat", ["path": "/srv/a.txt"])
        #expect(stat.result?["mode"] as? Int == 0o644 && stat.result?["name"] as? String == "a.txt")
        #expect(try call("sandbox.fs.rename", ["path": "/srv/a.txt", "destination": "/srv/b.txt"]).code == nil)
        #expect(try call("sandbox.fs.remove", ["path": "/srv"]).kind == "invalidState")  // not empty
        #expect(try call("sandbox.fs.remove", ["path": "/srv", "recursive": true]).code == nil)
        #expect(sandboxes.disk.file("/srv/b.txt") == nil)
    }

    @Test func errorsCarryTheirKind() throws {
        let missing = try call("sandbox.fs.read", ["path": "/nope"])
        #expect(missing.code == -32001 && missing.kind == "notFound")
        #expect(missing.message == "cannot read web:/nope: no such file or directory")
        let directory = try call("sandbox.fs.read", ["path": "/"])
        #expect(directory.code == -32009 && directory.kind == "isADirectory")
        _ = try call("sandbox.fs.write", ["path": "/f", "content": ""])
        let notDirectory = try call("sandbox.fs.list", ["path": "/f"])
        #expect(notDirectory.code == -32010 && notDirectory.kind == "notADirectory")
        let exists = try call("sandbox.fs.mkdir", ["path": "/f"])
        #expect(exists.kind == "alreadyExists")
        let unknown = try call("sandbox.fs.stat", ["sandbox": "ghost", "path": "/"])
        #expect(unknown.kind == "notFound" && unknown.message == "sandbox not found: ghost")
    }

    @Test func paramsAreCheckedBeforeAnySandboxIsReached() throws {
        let refused: [(String, [String: Any], String)] = [
            ("sandbox.fs.read", ["path": "../etc/passwd"], "'path' must be an absolute guest path"),
            ("sandbox.fs.read", ["path": "/etc/../../passwd"], "'path' must be an absolute guest path"),
            ("sandbox.fs.read", ["path": "/a\u{0}b"], "'path' must be an absolute guest path"),
            ("sandbox.fs.read", [:], "'path' is required"),
            ("sandbox.fs.read", ["path": "/f", "length": GuestFileOperation.maxChunkBytes + 1], "'length' must be a whole number"),
            ("sandbox.fs.read", ["path": "/f", "offset": -1], "'offset' must be a whole number"),
            ("sandbox.fs.write", ["path": "/f", "content": "not base64!"], "'content' must be base64"),
            ("sandbox.fs.write", ["path": "/f", "content": "", "mode": 0o10000], "'mode' must be a whole number"),
            ("sandbox.fs.rename", ["path": "/a", "destination": "b"], "'destination' must be an absolute guest path"),
            ("sandbox.fs.list", ["sandbox": "../x", "path": "/"], "invalid sandbox name"),
        ]
        for (method, params, message) in refused {
            let answer = try call(method, params)
            #expect(answer.code == -32602, "\(method) \(params)")
            #expect(answer.message?.contains(message) == true, "\(answer.message ?? "")")
        }
        #expect(sandboxes.calls.isEmpty)
        #expect(sandboxes.disk.requestCount == 0)
    }

    @Test func contentOverTheLimitIsRefusedBeforeDecoding() throws {
        let big = String(repeating: "A", count: (GuestFileOperation.maxChunkBytes + 2) / 3 * 4 + 4)
        let answer = try call("sandbox.fs.write", ["path": "/big", "content": big])
        #expect(answer.kind == "tooLarge" && answer.code == -32012)
        #expect(sandboxes.disk.requestCount == 0)
    }
}
