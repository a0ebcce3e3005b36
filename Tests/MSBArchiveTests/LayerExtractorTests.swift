import Foundation
import Glibc
import MSBCore
import Testing
@testable import MSBArchive

/// Image layers applied on the host: each hostile layer is refused or contained in the
/// root, and nothing beside the root changes.
@Suite struct LayerExtractorTests {
    static func apply(_ layers: [[UInt8]], to scratch: Scratch,
                      limits: ArchiveLimits = .layers) throws(MSBError) -> LayerExtractor {
        var extractor = try LayerExtractor(root: scratch.root, limits: limits)
        for (index, bytes) in layers.enumerated() {
            try extractor.apply(label: "layer \(index + 1)") { (limits: ArchiveLimits) throws(MSBError) in
                try ArchiveReader(bytes: bytes, compression: .detect, limits: limits, label: "layer \(index + 1)")
            }
        }
        return extractor
    }

    static func refusal(_ layers: [[UInt8]], _ scratch: Scratch) -> String? {
        do {
            _ = try apply(layers, to: scratch)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func namesThatClimbOrStartAtSlashAreRefused() throws {
        for (name, message) in [("../x", "layer 1: refused entry '../x': it leaves the root"),
                                ("a/../../outside/x", "layer 1: refused entry 'a/../../outside/x': it leaves the root"),
                                ("/etc/msb-evil", "layer 1: refused entry '/etc/msb-evil': it is an absolute name")] {
            let scratch = try Scratch()
            var tar = TarBytes()
            tar.file(name, "evil\n")
            #expect(Self.refusal([tar.finished], scratch) == message)
            #expect(scratch.writtenOutside == [])
        }
        #expect(!FileManager.default.fileExists(atPath: "/etc/msb-evil"))
    }

    /// `.wh...` hid `root/..` before: the whole directory above the root went.
    @Test func whiteoutsMustNameOneEntry() throws {
        for name in [".wh...", "a/.wh...", ".wh..", ".wh."] {
            let scratch = try Scratch()
            var lower = TarBytes()
            lower.file("a/keep")
            var tar = TarBytes()
            tar.header(name)
            let message = Self.refusal([lower.finished, tar.finished], scratch)
            #expect(message == "layer 2: refused whiteout '\(name)': it must name one entry", "\(name)")
            #expect(scratch.writtenOutside == [] && scratch.contents("a/keep") == "x\n")
        }
    }

    @Test func whiteoutsAndOpaqueDirectoriesHideOnlyLowerLayers() throws {
        let scratch = try Scratch()
        var lower = TarBytes()
        lower.file("etc/gone")
        lower.file("etc/kept")
        lower.file("opaque/old")
        lower.file("opaque/sub/old")
        var upper = TarBytes()
        upper.file("etc/new")  // before its directory's whiteouts: still kept
        upper.header("etc/.wh.gone")
        upper.header("etc/.wh.new")  // names a file of this very layer: hides nothing
        upper.file("opaque/fresh")
        upper.header("opaque/.wh..wh..opq")
        upper.header(".wh..wh.plnk")
        _ = try Self.apply([lower.finished, upper.finished], to: scratch)
        #expect(scratch.type("etc/gone") == nil && scratch.contents("etc/kept") == "x\n" && scratch.contents("etc/new") == "x\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.root + "/opaque") == ["fresh"])
        #expect(scratch.type(".wh..wh.plnk") == nil && scratch.writtenOutside == [])
    }

    /// Absolute and climbing links, then entries through them: everything lands inside the
    /// root as the guest will see it; the host's `/etc` and the tree beside stay untouched.
    @Test func symlinksOnTheWayResolveInsideTheRoot() throws {
        let scratch = try Scratch()
        var lower = TarBytes()
        lower.directory("usr/bin")
        lower.symlink("bin", to: "usr/bin")
        lower.symlink("slash", to: "/")
        lower.symlink("hostpath", to: scratch.outside)
        lower.symlink("up", to: "../../../../../..")
        lower.symlink("hostetc", to: "/etc")
        lower.symlink("loop", to: "loop")
        var upper = TarBytes()
        upper.file("bin/tool", "tool\n")
        upper.file("slash/etc/msb-layer-test", "inside\n")
        upper.file("hostpath/planted", "inside\n")
        upper.file("up/at-root", "inside\n")
        upper.file("hostetc/passwd-msb-layer-test", "inside\n")
        _ = try Self.apply([lower.finished, upper.finished], to: scratch)
        #expect(scratch.contents("usr/bin/tool") == "tool\n")
        #expect(scratch.contents("etc/msb-layer-test") == "inside\n")
        #expect(scratch.contents("etc/passwd-msb-layer-test") == "inside\n", "/etc inside the root is root/etc")
        #expect(scratch.type("hostetc") == S_IFLNK)
        #expect(scratch.contents(String(scratch.outside.dropFirst()) + "/planted") == "inside\n")
        #expect(scratch.contents("at-root") == "inside\n")
        #expect(scratch.writtenOutside == [])
        #expect(!FileManager.default.fileExists(atPath: "/etc/msb-layer-test"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/passwd-msb-layer-test"))
        var looping = TarBytes()
        looping.file("loop/x")
        #expect(Self.refusal([lower.finished, looping.finished], try Scratch())?.hasSuffix("too many symbolic links at 'loop'") == true)
    }

    /// A link at an entry's own name is replaced, never written through.
    @Test func anEntryReplacesALinkAtItsName() throws {
        let scratch = try Scratch()
        var lower = TarBytes()
        lower.symlink("passwd", to: scratch.outside + "/sentinel")
        lower.symlink("dir", to: scratch.outside)
        var upper = TarBytes()
        upper.file("passwd", "replaced\n")
        upper.directory("dir")
        upper.file("dir/x")
        upper.hardLink("again", to: "passwd")
        _ = try Self.apply([lower.finished, upper.finished], to: scratch)
        #expect(scratch.type("passwd") == S_IFREG && scratch.contents("passwd") == "replaced\n")
        #expect(scratch.type("dir") == S_IFDIR && scratch.contents("again") == "replaced\n")
        #expect(scratch.writtenOutside == [])
    }

    @Test func hardLinksMustNameAnEarlierFileInTheRoot() throws {
        for (target, message) in [("../outside/sentinel", "layer 1: refused hard link 'h' to '../outside/sentinel': it leaves the root"),
                                  ("/etc/passwd", "layer 1: refused hard link 'h' to '/etc/passwd': it leaves the root"),
                                  ("later", "layer 1: refused hard link 'h': 'later' is not an earlier file in the root"),
                                  ("d", "layer 1: refused hard link 'h': 'd' is not an earlier file in the root")] {
            let scratch = try Scratch()
            var tar = TarBytes()
            tar.directory("d")
            tar.hardLink("h", to: target)
            tar.file("later")
            #expect(Self.refusal([tar.finished], scratch) == message)
            #expect(scratch.writtenOutside == [])
        }
    }

    @Test func ownersAndModesAreKeptAndDevicesSkipped() throws {
        let scratch = try Scratch()
        var tar = TarBytes()
        tar.header("su", size: 2, mode: 0o4755, uid: 1000, gid: 1000)
        tar.data(Array("x\n".utf8))
        tar.characterDevice("dev/null")
        tar.fifo("fifo")
        tar.directory("ro", mode: 0o555)
        tar.file("ro/child")
        let extractor = try Self.apply([tar.finished], to: scratch)
        #expect(extractor.skippedEntries == 2)
        #expect(scratch.type("dev/null") == nil && scratch.type("fifo") == nil)
        #expect(scratch.contents("ro/child") == "x\n")
        if getuid() == 0 {
            var info = stat()
            lstat(scratch.root + "/su", &info)
            #expect(info.st_uid == 1000 && info.st_mode & 0o7777 == 0o4755)
        }
    }

    @Test func theByteLimitCoversAllLayersTogether() throws {
        var layer = TarBytes()
        layer.file("big", String(repeating: "b", count: 300_000))
        let limits = ArchiveLimits(maxEntries: 100, maxTotalBytes: 1 << 20)
        let twoScratch = try Scratch(), fourScratch = try Scratch()
        _ = try Self.apply([layer.finished, layer.finished], to: twoScratch, limits: limits)
        let four = Result { () throws(MSBError) in try Self.apply(Array(repeating: layer.finished, count: 4), to: fourScratch, limits: limits) }
        guard case .failure(let error) = four else {
            Issue.record("four layers of 300 kB passed a 1 MiB limit")
            return
        }
        #expect(error.message == "layer 4 expands to more than 1 MiB (with the archives before it)")
    }
}
