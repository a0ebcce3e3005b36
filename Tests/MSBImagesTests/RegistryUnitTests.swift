import Foundation
import Testing
@testable import MSBImages
import MSBArchive
import MSBCore

@Suite struct RegistryUnitTests {
    @Test func referencesFollowDockerHubDefaults() throws {
        #expect(try ImageReference.parse("alpine") == ImageReference(registry: "docker.io", repository: "library/alpine", reference: "latest"))
        #expect(try ImageReference.parse("docker.io/library/alpine:3.20").reference == "3.20")
        let local = try ImageReference.parse("localhost:5000/team/tool:1.2")
        #expect(local == ImageReference(registry: "localhost:5000", repository: "team/tool", reference: "1.2"))
        #expect(try ImageReference.parse("user/app").repository == "user/app")
        let digest = "sha256:" + String(repeating: "a", count: 64)
        #expect(try ImageReference.parse("ghcr.io/o/r@\(digest)").isDigest)
        #expect(try ImageReference.parse("alpine").apiHost == "registry-1.docker.io")
        #expect(try ImageReference.parse("[::1]:5000/x/y:1").registry == "[::1]:5000")
        #expect(try ImageReference.parse("127.0.0.1:5000/a_b/c-d.e__f:v1.0_rc-2").repository == "a_b/c-d.e__f")
        for bad in ["", "Bad Name", "UPPER/case", "x@sha256:short", "a//b", "x:", "[::1/x", "[::1]x/y", "h:port/x",
                    "a/../b", "-a/b", "a/b-", "a/b:-tag", "a/b:" + String(repeating: "t", count: 129), "a\u{0}b",
                    "host:99999/x", "a/b@sha512:" + String(repeating: "a", count: 128), "a/.", "./x",
                    // 510 bytes without a tag: its canonical form with ":latest" would not parse.
                    Array(repeating: String(repeating: "h", count: 60), count: 5).joined(separator: ".") + "/" + String(repeating: "r", count: 205)] {
            #expect(throws: MSBError.self, "\(bad)") { try ImageReference.parse(bad) }
        }
    }

    /// References that used to parse into parts that do not fit a registry URL (found by
    /// the image-reference fuzz target, Fuzz/Regressions/image-reference): the registry is
    /// host[:port], the repository and tag follow the distribution grammar, in ASCII.
    @Test func hostileReferencesAreRefused() throws {
        let fullwidthDigest = "sha256:" + String(repeating: "\u{FF41}", count: 64)
        for bad in ["[::1]:50:/00xy", "[::1/x", "a.b#x/y", "a.b:port/y", "a.b:99999/y", "host:/x", "-a.b/x", "a.b/x:t?y",
                    "a.b/x:t#y", "a.b/caf\u{E9}", "a.b/x:\u{E9}", "a.b/x\u{0661}", "x@\(fullwidthDigest)", "a.b/-x", "a.b/x-",
                    "a.b/x:" + String(repeating: "t", count: 129)] {
            #expect(throws: MSBError.self, "\(bad)") { try ImageReference.parse(bad) }
        }
        #expect(try ImageReference.parse("[::1]:5000/x:y") == ImageReference(registry: "[::1]:5000", repository: "x", reference: "y"))
        #expect(try ImageReference.parse("127.0.0.1:5000/a_b/c.d-e__f:V1.0_rc-1").reference == "V1.0_rc-1")
        #expect(try ImageReference.parse("Registry.Example.com/x").registry == "Registry.Example.com")
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(ContentDigest.of(Data()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(ContentDigest.of(Data("abc".utf8)).description == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Data(String(repeating: "a", count: 1_000).utf8)
        #expect(ContentDigest.of(long).hex == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    /// A manifest's digests become file names: only the one exact form is accepted.
    @Test func digestsOtherThanSha256HexAreRefused() {
        let good = "sha256:" + String(repeating: "0123456789abcdef", count: 4)
        #expect(ContentDigest(good)?.hex.count == 64)
        for bad in ["sha256:../../../../../../../../../../../../../../../../../../../../../../dev/zero",
                    "sha256:" + String(repeating: "A", count: 64), "sha256:" + String(repeating: "a", count: 63),
                    "sha256:" + String(repeating: "a", count: 65), "sha512:" + String(repeating: "a", count: 128),
                    "sha256:" + String(repeating: "a", count: 63) + "/", "sha256:/" + String(repeating: "a", count: 63),
                    good + "\n", "", "sha256:"] {
            #expect(ContentDigest(bad) == nil, "\(bad)")
            #expect(throws: MSBError.self) { try ContentDigest.parse(bad, what: "layer") }
        }
    }

    @Test func pullLimitsComeFromTheEnvironmentWithinRange() {
        let limits = PullLimits(environment: ["MSB_PULL_MAX_LAYERS": "7", "MSB_PULL_MAX_UNPACKED_MIB": "64",
                                              "MSB_PULL_MAX_ENTRIES": "100", "MSB_PULL_CONCURRENCY": "99999999999999999999"])
        #expect(limits.layerCount == 7)
        #expect(limits.extraction.maxTotalBytes == 64 << 20)
        #expect(limits.extraction.maxEntries == 100)
        #expect(limits.concurrentDownloads == PullLimits().concurrentDownloads)
    }

    @Test func bearerChallengesAreParsed() {
        let fields = RegistryClient.challengeFields(#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#)
        #expect(fields["realm"] == "https://auth.docker.io/token")
        #expect(fields["service"] == "registry.docker.io")
        #expect(fields["scope"] == "repository:library/alpine:pull")
    }

    /// The applier the puller calls: gzip, zstd and plain layers, told apart by their bytes
    /// (the rules themselves are tested in MSBArchiveTests).
    @Test func layersOfEachCompressionApply() throws {
        let top = FileManager.default.temporaryDirectory.appendingPathComponent("msb-layers-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: top + "/rootfs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: top) }
        var applier = LayerApplier(root: top + "/rootfs")
        for (index, compression) in [ArchiveWriter.Compression.gzip, .zstd, .none].enumerated() {
            let path = top + "/layer\(index)"
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            let writer = try ArchiveWriter(fd: fd, compression: compression)
            try writer.add(ArchiveEntry(path: "etc/layer\(index)", kind: .file, sizeBytes: 2))
            try writer.writeData(Array("\(index)\n".utf8))
            if index == 2 { try writer.add(ArchiveEntry(path: "etc/.wh.layer0", kind: .file)) }
            try writer.finish()
            close(fd)
            try applier.apply(layer: path, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        #expect(!FileManager.default.fileExists(atPath: top + "/rootfs/etc/layer0"))
        #expect(FileManager.default.contents(atPath: top + "/rootfs/etc/layer1") == Data("1\n".utf8))
        #expect(FileManager.default.contents(atPath: top + "/rootfs/etc/layer2") == Data("2\n".utf8))

        // Hole 10: `.wh...` named `root/..`.
        let evil = top + "/evil"
        let fd = open(evil, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        let writer = try ArchiveWriter(fd: fd)
        try writer.add(ArchiveEntry(path: ".wh...", kind: .file))
        try writer.finish()
        close(fd)
        #expect(throws: MSBError.self) { try applier.apply(layer: evil, mediaType: "application/vnd.oci.image.layer.v1.tar") }
        #expect(FileManager.default.fileExists(atPath: top + "/layer0"))
    }
}
