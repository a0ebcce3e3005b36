import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBVMM
@testable import MSBSupervisor
import Testing
@testable import MSBImages

/// Images are immutable and content-addressed; a name is a pointer. A re-pull or rebuild
/// moves the name and never changes the disk under an existing sandbox.
@Suite struct ImageStoreTests {
    let home: String
    let paths: MSBPaths
    let store: ImageStore

    init() throws {
        var template = Array("/tmp/msb-images.XXXXXX".utf8CString)
        home = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) } ?? "" }
        paths = MSBPaths(environment: ["MSB_HOME": home, "MSB_ARTIFACTS": home + "/guest", "HOME": home])
        store = ImageStore(paths: paths)
        try FileManager.default.createDirectory(atPath: paths.artifacts, withIntermediateDirectories: true)
        for file in ["vmlinux", "initramfs.cpio"] { FileManager.default.createFile(atPath: paths.artifacts + "/" + file, contents: Data()) }
    }

    /// Stores an image whose root disk holds `content`, tagged `name`, as a pull would.
    @discardableResult
    func install(_ name: String, content: String) throws -> ContentDigest {
        let work = try store.makeWorkDirectory("pull")
        FileManager.default.createFile(atPath: work + "/rootfs.ext4", contents: Data(content.utf8))
        let digest = ContentDigest.of(Data(content.utf8))
        try store.save(ImageInfo(name: name, kind: "disk", digest: digest.description, sizeBytes: 1, createdAt: Date(),
                                 environment: [], workingDirectory: "/", source: "test"), in: work)
        try store.install(work, digest: digest, name: name)
        return digest
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: home) }

    @Test func aRepullMovesTheNameNotTheSandboxesDisk() throws {
        defer { cleanUp() }
        let first = try install("app", content: "first")
        let backend = LocalBackend(paths: paths)
        let sandbox = try backend.create(SandboxConfig(name: "s1", image: "app", accelerator: .tcg), start: false)
        #expect(sandbox.config.imageDigest == first.description)
        #expect(QCOW2.backingFile(of: paths.rootDisk("s1")) == paths.storedImageRootDisk(digestHex: first.hex))

        let second = try install("app", content: "second")
        #expect(try store.get("app").digest == second.description)
        // The first sandbox still names the first image, whose bytes are unchanged and read-only.
        #expect(QCOW2.backingFile(of: paths.rootDisk("s1")) == paths.storedImageRootDisk(digestHex: first.hex))
        #expect(FileManager.default.contents(atPath: store.rootDisk(first)) == Data("first".utf8))
        #expect(access(store.rootDisk(first), W_OK) != 0 || getuid() == 0)
        var info = stat()
        #expect(stat(store.rootDisk(first), &info) == 0 && info.st_mode & 0o222 == 0)
        #expect(try Supervisor.verifiedRootDisk(sandbox.config, name: "s1", paths: paths)?.overlay == paths.rootDisk("s1"))

        // The name can go; the image s1 uses stays until s1 does.
        try backend.removeImage("app", force: false)
        #expect(access(store.rootDisk(first), F_OK) == 0)
        #expect(access(store.rootDisk(second), F_OK) != 0, "an image nothing uses is removed with its name")
        _ = try backend.pruneImages()
        #expect(access(store.rootDisk(first), F_OK) == 0)
        try backend.remove("s1", force: true)
        _ = try backend.pruneImages()
        #expect(access(store.rootDisk(first), F_OK) != 0)
    }

    @Test func aNameInUseIsRefusedUnlessForcedAndTheSandboxKeepsItsImage() throws {
        defer { cleanUp() }
        let digest = try install("tool", content: "v1")
        let backend = LocalBackend(paths: paths)
        _ = try backend.create(SandboxConfig(name: "s1", image: "tool", accelerator: .tcg), start: false)
        #expect { try backend.removeImage("tool", force: false) } throws: { error in
            (error as? MSBError)?.message == "image tool is used by sandboxes: s1"
        }
        try backend.removeImage("tool", force: true)
        #expect(throws: MSBError.self) { try store.get("tool") }
        #expect(access(store.rootDisk(digest), F_OK) == 0)
    }

    @Test func sameContentUnderTwoNamesIsStoredOnce() throws {
        defer { cleanUp() }
        let a = try install("a", content: "same")
        let b = try install("b", content: "same")
        #expect(a == b)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.storeDirectory) == [a.hex])
        #expect(try store.list().map(\.name) == ["base", "a", "b"])
    }

    @Test func workDirectoriesAreNeverShared() throws {
        defer { cleanUp() }
        let directories = try (0..<20).map { _ in try store.makeWorkDirectory("pull") }
        #expect(Set(directories).count == 20)
        // Leftovers of a crash (work directories, half-made tags) go with prune.
        #expect(store.prune(usedBy: []) >= 20)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory).filter { $0.hasPrefix(".tmp-") }.isEmpty)
    }

    @Test func imagesOfTheOldLayoutMoveIntoTheStore() throws {
        defer { cleanUp() }
        let legacy = store.imageDirectory("old")
        try FileManager.default.createDirectory(atPath: legacy, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: legacy + "/rootfs.ext4", contents: Data("legacy".utf8))
        let digest = ContentDigest.of(Data("legacy".utf8))
        try store.save(ImageInfo(name: "old", kind: "disk", digest: digest.description, sizeBytes: 1, createdAt: Date(),
                                 environment: [], workingDirectory: "/", source: "test"), in: legacy)
        #expect(try store.get("old").digest == digest.description)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: legacy) == ".store/" + digest.hex)
        // Paths through the name still reach the same bytes (old overlays name them so).
        #expect(FileManager.default.contents(atPath: legacy + "/rootfs.ext4") == Data("legacy".utf8))
    }

    /// A create killed before its overlay existed must not boot the built-in image instead.
    @Test func aDiskSandboxWithoutItsOverlayDoesNotBoot() throws {
        defer { cleanUp() }
        let digest = try install("app", content: "x")
        var config = SandboxConfig(name: "half", image: "app", accelerator: .tcg)
        config.imageDigest = digest.description
        #expect { try Supervisor.verifiedRootDisk(config, name: "half", paths: paths) } throws: { error in
            (error as? MSBError)?.message == "the root disk of sandbox half is missing (its create did not finish)"
        }
        config.imageDigest = nil
        #expect(throws: MSBError.self) { try Supervisor.verifiedRootDisk(config, name: "half", paths: paths) }
    }
}
