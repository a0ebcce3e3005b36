import Foundation
import Testing

/// `msb pull` against a real registry: Debian's docker-registry on 127.0.0.1, filled
/// with skopeo from an OCI layout that Fixtures/oci_fixture.py builds (whiteouts,
/// opaque directories, a symlink pointing out of the root, links, a 100 MB layer, and a
/// hostile image whose second layer climbs out with `../evil`).
@Suite(.serialized) struct RegistryTests {
    struct Registry {
        let address: String
        let storage: String
        let manifestDigest: String
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures"

    static func tool(_ argv: [String]) -> (status: Int32, out: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return (-1, "") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Starts Debian's docker-registry on 127.0.0.1:port with storage in dir/store;
    /// `auth` is extra YAML for the config (indented two spaces under `auth:`).
    static func startRegistry(dir: String, port: Int, auth: String? = nil) -> Process? {
        var config = """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(dir)/store
            http:
              addr: 127.0.0.1:\(port)
            """
        if let auth { config += "\nauth:\n" + auth }
        try? config.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        server.arguments = ["serve", dir + "/config.yml"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        return (try? server.run()) == nil ? nil : server
    }

    /// Started once per run; scripts/test.sh stops it afterwards.
    static let registry: Registry? = {
        let dir = MSBHarness.home + "/registry"
        try? FileManager.default.createDirectory(atPath: dir + "/store", withIntermediateDirectories: true)
        let built = tool(["python3", fixtures + "/oci_fixture.py", dir + "/layout"])
        guard built.status == 0 else { return nil }
        for _ in 0..<5 {
            let port = Int.random(in: 20_000...60_000)
            guard let server = startRegistry(dir: dir, port: port) else { return nil }
            for _ in 0..<50 where server.isRunning {
                if tool(["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:\(port)/v2/')"]).status == 0 {
                    let address = "127.0.0.1:\(port)"
                    for tag in ["1", "multi", "hostile"] {
                        _ = tool(["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false",
                                  "oci:\(dir)/layout:\(tag)", "docker://\(address)/test/fixture:\(tag)"])
                    }
                    return Registry(address: address, storage: dir + "/store",
                                    manifestDigest: built.out.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                usleep(100_000)
            }
            server.terminate()
        }
        return nil
    }()

    /// A second registry that demands bearer tokens from Fixtures/token_server.py
    /// (which grants them for msb:secret only), filled through that same token flow.
    static let tokenRegistry: String? = {
        guard Self.registry != nil else { return nil }
        let dir = MSBHarness.home + "/token-registry"
        try? FileManager.default.createDirectory(atPath: dir + "/store", withIntermediateDirectories: true)
        for _ in 0..<5 {
            let tokenPort = Int.random(in: 20_000...60_000), port = tokenPort + 1
            let tokens = Process()
            tokens.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            tokens.arguments = ["python3", fixtures + "/token_server.py", dir, String(tokenPort), "msb-test"]
            tokens.standardOutput = FileHandle.nullDevice
            tokens.standardError = FileHandle.nullDevice
            guard (try? tokens.run()) != nil else { return nil }
            for _ in 0..<50 where !FileManager.default.fileExists(atPath: dir + "/token.crt") { usleep(100_000) }
            let auth = """
                  token:
                    realm: http://127.0.0.1:\(tokenPort)/token
                    service: msb-test
                    issuer: msb-test-issuer
                    rootcertbundle: \(dir)/token.crt
                """
            guard let server = startRegistry(dir: dir, port: port, auth: auth) else { return nil }
            let address = "127.0.0.1:\(port)"
            for _ in 0..<50 where server.isRunning && tokens.isRunning {
                if tool(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-creds", "msb:secret",
                         "oci:\(MSBHarness.home)/registry/layout:1", "docker://\(address)/test/fixture:1"]).status == 0 {
                    return address
                }
                usleep(200_000)
            }
            server.terminate()
            tokens.terminate()
            try? FileManager.default.removeItem(atPath: dir + "/token.crt")
        }
        return nil
    }()

    @Test func bearerTokensFromTheRegistrysChallenge() throws {
        let address = try #require(Self.tokenRegistry, "the token-auth registry did not start")
        let reference = "\(address)/test/fixture:1"
        let home = MSBHarness.home + "/token-pull"
        let anonymous = try MSBHarness.run(["pull", reference, "--insecure"], env: ["MSB_HOME": home])
        #expect(anonymous.status == 1)
        #expect(anonymous.stderr == "error: registry \(address) refused a token (HTTP 401)\n  → check MSB_REGISTRY_AUTH\n")
        let wrong = try MSBHarness.run(["pull", reference, "--insecure"], env: ["MSB_HOME": home, "MSB_REGISTRY_AUTH": "msb:wrong"])
        #expect(wrong.status == 1)
        let granted = try MSBHarness.run(["pull", reference, "--insecure"], env: ["MSB_HOME": home, "MSB_REGISTRY_AUTH": "msb:secret"])
        #expect(granted.status == 0, "\(granted.stderr)")
        #expect(granted.out == reference + "\n")
    }

    @Test func pullsAnIndexAppliesLayersSafelyAndBoots() throws {
        let registry = try #require(Self.registry, "the test registry did not start")
        let reference = "\(registry.address)/test/fixture:multi"
        #expect(try MSBHarness.ok(["pull", reference, "--insecure"]) == reference + "\n")
        // The symlink escape -> / was resolved inside the image, never on the host.
        #expect(!FileManager.default.fileExists(atPath: "/etc/escaped"))
        #expect(!FileManager.default.fileExists(atPath: MSBHarness.home + "/images/evil"))

        let name = MSBHarness.uniqueName("pulled")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name, "--image", reference])
        let script = """
            pwd; echo $FIXTURE; ls /data; ls /opaque; cat /etc/escaped /etc/greeting
            readlink /data/link; stat -c '%a %h' /data/secret.sh /data/hard
            test -e /data/fifo || echo no-fifo; test -e /data/old.txt || echo no-old; wc -c < /data/big.bin
            """
        let out = try MSBHarness.ok(["exec", name, "--", "sh", "-c", script])
        let longName = "long-name-" + String(repeating: "long-name-", count: 11) + "end"
        let expected = ["/data", "1", "big.bin", "hard", "keep.txt", "link", longName, "secret.sh", "c", "inside",
                        "hello from the fixture", "keep.txt", "750 1", "644 2", "no-fifo", "no-old", "104857600"]
        #expect(out == expected.joined(separator: "\n") + "\n")

        // The image's User is the default; -u overrides it; unknown users are clear errors.
        #expect(try MSBHarness.ok(["exec", name, "--", "sh", "-c", "id -u; id -g; echo $HOME $USER"]) == "1000\n1000\n/home/app app\n")
        #expect(try MSBHarness.ok(["exec", "-u", "0", name, "--", "id", "-u"]) == "0\n")
        #expect(try MSBHarness.ok(["exec", "-u", "app:staff", name, "--", "id", "-g"]) == "50\n")
        let unknown = try MSBHarness.run(["exec", "-u", "nobody", name, "--", "true"])
        #expect(unknown.status == 125)
        #expect(unknown.stderr == "error: unable to find user nobody: no matching entries in passwd file\n")
        // Without a command, run uses the image's Entrypoint + Cmd.
        #expect(try MSBHarness.ok(["run", "--image", reference]) == "from-cmd\n")
    }

    /// A layer entry that climbs out of the root fails the whole pull, clearly, and leaves nothing.
    @Test func aLayerThatClimbsOutIsRefused() throws {
        let registry = try #require(Self.registry)
        let home = MSBHarness.home + "/hostile-pull"
        let result = try MSBHarness.run(["pull", "\(registry.address)/test/fixture:hostile", "--insecure"], env: ["MSB_HOME": home])
        #expect(result.status == 2)
        #expect(result.stderr == "error: layer 2: refused entry '../evil': it leaves the root\n")
        #expect(!FileManager.default.fileExists(atPath: home + "/images/evil"))
        #expect(!FileManager.default.fileExists(atPath: MSBHarness.home + "/images/evil"))
        #expect(try MSBHarness.run(["image", "ls", "-q"], env: ["MSB_HOME": home]).out == "base\n")
    }

    @Test func pullsByDigestAndListsTheImage() throws {
        let registry = try #require(Self.registry)
        let reference = "\(registry.address)/test/fixture@\(registry.manifestDigest)"
        #expect(try MSBHarness.ok(["pull", reference, "--insecure"]) == reference + "\n")
        let json = try MSBHarness.ok(["image", "ls", "--format", "json"])
        let images = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
        let pulled = images.first { $0["name"] as? String == reference }
        #expect(pulled?["digest"] as? String == registry.manifestDigest)
        #expect((pulled?["size"] as? Int ?? 0) > 100_000_000)
    }

    @Test func aCorruptedBlobIsRefusedAndNothingIsKept() throws {
        let registry = try #require(Self.registry)
        // A state directory of its own, so no blob is already cached.
        let home = MSBHarness.home + "/corrupt"
        let env = ["MSB_HOME": home]
        // Corrupt the second layer (the small one) in the registry's storage.
        let layout = MSBHarness.home + "/registry/layout"
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            layout + "/blobs/sha256/" + registry.manifestDigest.dropFirst(7)))) as? [String: Any]
        let layers = manifest?["layers"] as? [[String: Any]] ?? []
        let digest = try #require(layers.dropFirst().first?["digest"] as? String).dropFirst(7)
        let blob = "\(registry.storage)/docker/registry/v2/blobs/sha256/\(digest.prefix(2))/\(digest)/data"
        let original = try Data(contentsOf: URL(fileURLWithPath: blob))
        defer { try? original.write(to: URL(fileURLWithPath: blob)) }
        var corrupted = original
        corrupted[corrupted.count / 2] ^= 0xff
        try corrupted.write(to: URL(fileURLWithPath: blob))

        let result = try MSBHarness.run(["pull", "\(registry.address)/test/fixture:1", "--insecure"], env: env)
        #expect(result.status == 1)
        #expect(result.stderr.contains("digest mismatch: expected sha256:\(digest)"))
        #expect(result.stderr.contains("nothing was kept"))
        #expect(!FileManager.default.fileExists(atPath: home + "/images/.blobs/sha256/\(digest)"))
        #expect(try MSBHarness.run(["image", "ls", "-q"], env: env).out == "base\n")
    }

    @Test func badReferencesAndMissingTags() throws {
        let registry = try #require(Self.registry)
        let bad = try MSBHarness.run(["pull", "Bad Name"])
        #expect(bad.status == 2)
        #expect(bad.stderr.hasPrefix("error: invalid image reference 'Bad Name'\n"))
        let missing = try MSBHarness.run(["pull", "\(registry.address)/test/fixture:nope", "--insecure"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("answered not found"))
    }
}
