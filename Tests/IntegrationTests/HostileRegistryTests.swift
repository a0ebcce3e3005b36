import Foundation
import Testing

/// `msb pull` against a registry that attacks (Fixtures/hostile_registry.py on 127.0.0.1):
/// digests that climb out of the blob cache or name host files, other algorithms, too many
/// layers, a huge manifest, an endless layer, a layer that is not what it claims, error
/// bodies meant to be echoed, and a token realm that fishes for credentials. Each is
/// refused with its own message, msb does not crash, and nothing unverified is kept.
@Suite(.serialized) struct HostileRegistryTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/hostile_registry.py"

    final class Registry: @unchecked Sendable {
        let process = Process()
        let log: String
        var address = ""

        init() throws {
            log = MSBHarness.home + "/hostile-registry-\(getpid()).log"
            FileManager.default.createFile(atPath: log, contents: Data())
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", HostileRegistryTests.fixture, log]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            var line = Data()
            while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line += byte }
            address = "127.0.0.1:" + String(decoding: line, as: UTF8.self)
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }

        var requests: [[String: Any]] {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
    }

    static let cases: [(repository: String, env: [String: String], message: String)] = [
        ("layer-traversal", [:], "error: the registry sent an invalid layer digest (sha256)"),
        ("config-traversal", [:], "error: the registry sent an invalid config digest (sha256)"),
        ("index-traversal", [:], "error: the registry sent an invalid manifest digest (sha256)"),
        ("sha512-layer", [:], "error: the registry sent an invalid layer digest (sha512)"),
        ("uppercase-digest", [:], "error: the registry sent an invalid layer digest (sha256)"),
        ("many-layers", [:], "has 500 layers; the limit is 128"),
        ("huge-manifest", [:], "the response is too large"),
        ("mismatch", [:], "layer 1/1 digest mismatch: expected sha256:"),
        ("endless-layer", ["MSB_PULL_MAX_LAYER_MIB": "1"], "the response is too large"),
        ("secret-error", [:], "answered HTTP 500 for evil/secret-error (UNKNOWN)"),
        ("realm-elsewhere", ["MSB_REGISTRY_AUTH": "user:password"],
         "asks for credentials to be sent over plain http to localhost; refused"),
    ]

    @Test func everyAttackIsRefusedAndNothingUnverifiedIsKept() throws {
        let registry = try Registry()
        defer { registry.stop() }
        var tried = 0
        for attack in Self.cases {
            let home = MSBHarness.home + "/hostile-pull-\(attack.repository)"
            try? FileManager.default.removeItem(atPath: home)
            let result = try MSBHarness.run(["pull", "\(registry.address)/evil/\(attack.repository):1", "--insecure"],
                                            env: attack.env.merging(["MSB_HOME": home]) { $1 })
            tried += 1
            #expect(result.status >= 1 && result.status < 126, "\(attack.repository): exit \(result.status) (a crash?) \(result.stderr)")
            #expect(result.stderr.contains(attack.message), "\(attack.repository): \(result.stderr)")
            #expect(!result.stderr.contains("SECRET"), "\(attack.repository): the registry's text was echoed")
            #expect(!result.stderr.contains(home), "\(attack.repository): a host path was shown")
            // Only verified blobs, named by their own digest, and no work directories or names.
            let images = home + "/images"
            let blobs = (try? FileManager.default.contentsOfDirectory(atPath: images + "/.blobs/sha256")) ?? []
            for blob in blobs {
                let data = try Data(contentsOf: URL(fileURLWithPath: images + "/.blobs/sha256/" + blob))
                #expect(Self.sha256(data) == blob, "\(attack.repository): unverified blob \(blob)")
            }
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: images)) ?? []).filter { $0 != ".blobs" }
            #expect(left.isEmpty, "\(attack.repository): left \(left)")
        }
        // Credentials never went to the realm on another host.
        let tokenRequests = registry.requests.filter { ($0["path"] as? String)?.hasPrefix("/token") == true }
        #expect(tokenRequests.allSatisfy { $0["authorization"] is NSNull || $0["authorization"] == nil })
        print("hostile registry: \(tried) attacks tried, \(registry.requests.count) requests served")
    }

    @Test func referencesThatUsedToCrashAreRefused() throws {
        for reference in ["[::1/x", "[::1]x/y", "host:99999/x", "a/../b", String(repeating: "a/", count: 300) + "b"] {
            let result = try MSBHarness.run(["pull", reference])
            #expect(result.status == 2, "\(reference): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: invalid image reference '"), "\(reference): \(result.stderr)")
        }
    }

    static func sha256(_ data: Data) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try? process.run()
        try? input.fileHandleForWriting.write(contentsOf: data)
        try? input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: out, as: UTF8.self).prefix(64))
    }
}
