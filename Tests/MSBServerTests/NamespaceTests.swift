import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// Namespaces as the SDKs' reference accepts them (letters of either case, digits, '_', '-',
/// up to 63 characters), and their directories: one each, inside `namespaces/`, never the
/// same for two namespaces, whatever the file system does with case.
@Suite struct NamespaceTests {
    let home = NSTemporaryDirectory() + "msbns-\(UUID().uuidString.prefix(8))"
    let authority = APIKeyAuthority(secret: Data(repeating: 4, count: 32))
    var paths: MSBPaths { MSBPaths(environment: ["MSB_HOME": home]) }
    var host: SandboxHost { SandboxHost(paths: paths, limits: ServerLimits()) }

    static let accepted = ["default", "team-a", "Team-A", "TEAM", "a", "Z", "0", "a_b-c", "9Lives",
                           String(repeating: "x", count: 32), String(repeating: "x", count: 33),
                           "A" + String(repeating: "b", count: 62)]
    static let refused = ["", "-a", "_a", "a/b", "/etc", "..", ".", "../x", "a/../b", ".hidden", "a.b", "a\u{0}b", "a b",
                          "a\\b", "a%2Fb", "*", "ä", "team\n", String(repeating: "x", count: 64), "A" + String(repeating: "b", count: 63)]

    @Test func theReferenceCharsetIsAcceptedAndNothingElse() {
        for namespace in Self.accepted {
            #expect((try? InputParsing.validateNamespace(namespace)) != nil, "\(namespace)")
        }
        for namespace in Self.refused {
            #expect(throws: MSBError.self, "\(namespace.debugDescription)") { try InputParsing.validateNamespace(namespace) }
        }
    }

    @Test func theWireAcceptsAndRefusesTheSame() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let d = RPCDispatcher(configuration: ServerConfiguration(paths: paths), host: host, authority: authority)
        let admin = "Bearer " + authority.issue(namespace: "*", expiresIn: nil)
        func list(_ namespace: String, key: String = admin) throws -> (status: Int, json: [String: Any]) {
            let params = try JSONSerialization.data(withJSONObject: ["namespace": namespace])
            let body = Array(#"{"jsonrpc":"2.0","method":"sandbox.list","params":"#.utf8) + Array(params) + Array(#","id":1}"#.utf8)
            let reply = d.handle(body: body, authorization: key)
            return (reply.status, try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:])
        }
        for namespace in ["Team-A", "A" + String(repeating: "b", count: 62)] {
            let answer = try list(namespace)
            #expect(answer.status == 200 && answer.json["result"] != nil, "\(namespace): \(answer.json)")
        }
        for namespace in ["../x", "a/b", "a\u{0}b", String(repeating: "x", count: 64)] {
            let answer = try list(namespace)
            #expect((answer.json["error"] as? [String: Any])?["code"] as? Int == -32602, "\(namespace.debugDescription)")
        }
        // Case matters: a key for Team-A is not a key for team-a.
        let upper = "Bearer " + authority.issue(namespace: "Team-A", expiresIn: nil)
        #expect(try list("Team-A", key: upper).status == 200)
        #expect(try list("team-a", key: upper).status == 403)
        // Nothing outside `namespaces/` was made.
        let made = (try? FileManager.default.contentsOfDirectory(atPath: home)) ?? []
        #expect(Set(made).isSubset(of: ["namespaces"]), "\(made)")
    }

    @Test func eachNamespaceHasItsOwnDirectoryInsideNamespaces() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let root = paths.namespacesDirectory
        var directories: [String: String] = [:]
        for namespace in Self.accepted {
            let backend = try host.backend(namespace)
            #expect(backend.namespace == namespace)
            let home = backend.paths.home
            #expect(home.hasPrefix(root + "/"), "\(home)")
            let directory = String(home.dropFirst(root.count + 1))
            #expect(!directory.contains("/") && directory != "." && directory != ".." && directory.utf8.count <= 33, "\(directory)")
            // Distinct even where the file system folds case.
            #expect(directories[directory.lowercased()] == nil, "\(namespace) and \(directories[directory.lowercased()] ?? "")")
            directories[directory.lowercased()] = namespace
        }
        // The older rule's namespaces keep their directories, so their state stays where it is.
        #expect(try host.backend("team-a").paths.home == root + "/team-a")
        #expect(try host.backend("Team-A").paths.home != root + "/Team-A")
    }

    @Test func namespacesOfEitherKindAreListedBack() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let host = host
        for namespace in ["team", "Team", "TEAM", String(repeating: "x", count: 40)] { _ = try host.backend(namespace).list() }
        let root = paths.namespacesDirectory
        // What is not a namespace's directory is not listed: one being made (no marker yet),
        // the server's own, a file.
        try FileManager.default.createDirectory(atPath: root + "/+0123456789abcdef0123456789abcdef", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/.prewarm", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/Upper", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/+stray", contents: Data("team".utf8))
        #expect(host.namespaces() == ["TEAM", "Team", "team", String(repeating: "x", count: 40)])
    }

    /// A directory whose marker names another namespace (a collision, a damaged file) is
    /// refused, never shared, and not listed.
    @Test func aDirectoryRecordedForAnotherNamespaceIsRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let host = host
        let directory = try host.backend("Team").paths.home
        let marker = directory + "/" + NamespaceDirectory.markerFile
        #expect(FileManager.default.contents(atPath: marker) == Data("Team".utf8))
        try Data("Other".utf8).write(to: URL(fileURLWithPath: marker))
        #expect(throws: MSBError.self) { try host.backend("Team") }
        try Data(repeating: 65, count: 4096).write(to: URL(fileURLWithPath: marker))
        #expect(throws: MSBError.self) { try host.backend("Team") }
        #expect(host.namespaces().isEmpty)
    }
}
