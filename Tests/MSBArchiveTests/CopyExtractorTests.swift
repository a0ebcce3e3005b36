import Foundation
import Glibc
import MSBCore
import Testing
@testable import MSBArchive

/// What `msb cp` unpacks from a sandbox: only the requested subtree, nothing through or
/// toward the outside, no special files, no setuid; a refusal names the entry.
@Suite struct CopyExtractorTests {
    /// Unpacks `bytes` as a copy of `tree` into the scratch root; the refusal's message, if any.
    static func unpack(_ bytes: [UInt8], _ scratch: Scratch, entry: String = "tree") -> (message: String?, stripped: Int) {
        do {
            let extractor = try CopyExtractor(workDirectory: scratch.root, entryName: entry)
            try extractor.extract(from: try ArchiveReader(bytes: bytes, compression: .none, limits: .copies))
            return (nil, extractor.strippedModes)
        } catch {
            return ("\(error.code): \(error.message)", 0)
        }
    }

    static func refused(_ why: String) -> String { "accessDenied: refused archive from the sandbox: \(why)" }

    static func hostile(_ build: (inout TarBytes) -> Void) -> [UInt8] {
        var tar = TarBytes()
        tar.directory("tree")
        tar.file("tree/ok")
        build(&tar)
        return tar.finished
    }

    static let cases: [(name: String, archive: [UInt8], message: String)] = [
        ("climbs", hostile { $0.file("../x") }, refused("entry '../x' leaves the target")),
        ("climbs inside", hostile { $0.file("tree/../../outside/x") }, refused("entry 'tree/../../outside/x' leaves the target")),
        ("absolute", hostile { $0.file("/etc/msb-cp-evil") }, refused("entry '/etc/msb-cp-evil' leaves the target")),
        ("beside the entry", hostile { $0.file("DEST/.bashrc") }, refused("entry 'DEST/.bashrc' is not part of 'tree'")),
        ("absolute link", hostile { $0.symlink("tree/l", to: "/etc") }, refused("entry 'tree/l' links outside the target ('/etc')")),
        ("climbing link", hostile { $0.symlink("tree/l", to: "../outside") }, refused("entry 'tree/l' links outside the target ('../outside')")),
        ("link then write through", hostile { $0.symlink("tree/l", to: "."); $0.file("tree/l/x") },
         refused("entry 'tree/l/x' writes through the symbolic link 'tree/l'")),
        ("chained links", hostile {
            $0.directory("tree/a/b")
            $0.symlink("tree/a/b/up", to: "../..")
            $0.symlink("tree/m", to: "a/b/up/../x")
        }, refused("entry 'tree/m' links outside the target ('a/b/up/../x')")),
        ("top entry is a link", { var t = TarBytes(); t.symlink("tree", to: "sub"); return t.finished }(),
         refused("entry 'tree' links outside the target ('sub')")),
        ("hard link outside", hostile { $0.hardLink("tree/h", to: "../outside/sentinel") }, refused("entry 'tree/h' is a hard link outside the target ('../outside/sentinel')")),
        ("hard link absolute", hostile { $0.hardLink("tree/h", to: "/etc/passwd") }, refused("entry 'tree/h' is a hard link outside the target ('/etc/passwd')")),
        ("hard link not earlier", hostile { $0.hardLink("tree/h", to: "tree/later"); $0.file("tree/later") },
         refused("entry 'tree/h' is a hard link to 'tree/later', not to an earlier file of the copy")),
        ("hard link to a directory", hostile { $0.hardLink("tree/h", to: "tree") },
         refused("entry 'tree/h' is a hard link to 'tree', not to an earlier file of the copy")),
        ("device", hostile { $0.characterDevice("tree/null") }, refused("entry 'tree/null' is a device file")),
        ("fifo", hostile { $0.fifo("tree/fifo") }, refused("entry 'tree/fifo' is a FIFO")),
        ("empty", TarBytes().finished, refused("it does not hold 'tree'")),
        ("escape sequence", hostile { $0.file("../\u{1b}]0;owned\u{7}") }, refused("entry '../\\x1b]0;owned\\x07' leaves the target")),
    ]

    @Test(arguments: 0..<cases.count) func hostileStreamsAreRefused(_ index: Int) throws {
        let scratch = try Scratch()
        let hostile = Self.cases[index]
        #expect(Self.unpack(hostile.archive, scratch).message == hostile.message, "\(hostile.name)")
        #expect(scratch.writtenOutside == [], "\(hostile.name)")
        #expect(scratch.bytesOutside == 0)
        #expect(!FileManager.default.fileExists(atPath: "/etc/msb-cp-evil"))
    }

    /// The fuzzing entry point takes every hostile archive of these tests (and their gzip
    /// forms) without a crash, leaving its scratch directory empty.
    @Test func theFuzzEntryPointTakesEveryHostileArchive() throws {
        for hostile in Self.cases {
            ArchiveFuzzing.run(hostile.archive)
            ArchiveFuzzing.run(Array(hostile.archive.prefix(700)))
        }
        ArchiveFuzzing.run([])
        ArchiveFuzzing.run([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3])
        ArchiveFuzzing.run([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])
        #expect(try FileManager.default.contentsOfDirectory(atPath: ArchiveFuzzing.scratch) == [])
        rmdir(ArchiveFuzzing.scratch)
    }

    @Test func setuidAndSetgidAreStrippedAndOwnersNotRestored() throws {
        let scratch = try Scratch()
        var tar = TarBytes()
        tar.directory("tree", mode: 0o3755)
        tar.header("tree/su", size: 2, mode: 0o6755, uid: 0, gid: 0)
        tar.data(Array("x\n".utf8))
        tar.header("tree/mine", size: 2, mode: 0o640, uid: 4242, gid: 4242)
        tar.data(Array("y\n".utf8))
        let outcome = Self.unpack(tar.finished, scratch)
        #expect(outcome.message == nil && outcome.stripped == 2)
        #expect(scratch.mode("tree/su") == 0o755 && scratch.mode("tree") == 0o755 && scratch.mode("tree/mine") == 0o640)
        var info = stat()
        lstat(scratch.root + "/tree/mine", &info)
        #expect(info.st_uid == geteuid())
    }

    @Test func aWholeTreeComesThrough() throws {
        let scratch = try Scratch()
        var tar = TarBytes()
        tar.directory("tree", mode: 0o751)
        tar.directory("tree/sub", mode: 0o500)
        tar.file("tree/sub/a.txt", "hello\n")
        tar.symlink("tree/sub/link", to: "a.txt")
        tar.symlink("tree/up", to: "sub/../sub/a.txt")
        tar.hardLink("tree/hard", to: "tree/sub/a.txt")
        tar.file("tree/sub/a.txt.new", "later wins\n")
        tar.file("tree/sub/a.txt.new", "last\n")
        #expect(Self.unpack(tar.finished, scratch).message == nil)
        #expect(scratch.contents("tree/sub/a.txt") == "hello\n" && scratch.contents("tree/hard") == "hello\n")
        #expect(scratch.contents("tree/sub/a.txt.new") == "last\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.root + "/tree/sub/link") == "a.txt")
        #expect(scratch.mode("tree") == 0o751 && scratch.mode("tree/sub") == 0o500)
    }

    /// The host side of an upload: the writer walks a tree without following links, and
    /// the same tree unpacks again under the copy rules.
    @Test func hostTreesRoundTrip() throws {
        let source = try Scratch()
        let tree = source.root + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/sub", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: tree + "/data.bin", contents: Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 3) }))
        FileManager.default.createFile(atPath: tree + "/sub/a.txt", contents: Data("hello\n".utf8))
        symlink("a.txt", tree + "/sub/link")
        symlink(source.outside, tree + "/hostlink")  // stored as a link, never followed
        link(tree + "/sub/a.txt", tree + "/sub/hard")
        chmod(tree + "/sub", 0o751)
        let bytes = try ArchiveReaderTests.written { try $0.addTree(at: tree, as: "tree") }
        let entries = try ArchiveReaderTests.readAll(bytes, compression: .none, limits: .copies)
        #expect(entries.map(\.path) == ["tree/", "tree/data.bin", "tree/hostlink", "tree/sub/", "tree/sub/a.txt", "tree/sub/hard", "tree/sub/link"])
        #expect(entries.first { $0.path == "tree/sub/hard" }?.kind == .hardLink)
        #expect(!entries.contains { $0.path.contains("sentinel") })
        let target = try Scratch()
        // The absolute link is exactly what the copy rules refuse coming back.
        #expect(Self.unpack(bytes, target).message == Self.refused("entry 'tree/hostlink' links outside the target ('\(source.outside)')"))
        unlink(tree + "/hostlink")
        let again = try ArchiveReaderTests.written { try $0.addTree(at: tree, as: "tree") }
        let clean = try Scratch()
        #expect(Self.unpack(again, clean).message == nil)
        #expect(FileManager.default.contents(atPath: clean.root + "/tree/data.bin") == FileManager.default.contents(atPath: tree + "/data.bin"))
        #expect(clean.mode("tree/sub") == 0o751 && clean.contents("tree/sub/hard") == "hello\n")
    }

    @Test func placingMergesIntoADirectoryAndRefusesTypeClashes() throws {
        let scratch = try Scratch()
        var tar = TarBytes()
        tar.directory("tree")
        tar.file("tree/new", "new\n")
        tar.file("tree/same", "copied\n")
        let work = scratch.root + "/work"
        mkdir(work, 0o700)
        #expect(Self.unpack(tar.finished, try Scratch()).message == nil)
        let extractor = try CopyExtractor(workDirectory: work, entryName: "tree")
        try extractor.extract(from: try ArchiveReader(bytes: tar.finished, compression: .none, limits: .copies))
        let destination = scratch.root + "/dest"
        try FileManager.default.createDirectory(atPath: destination + "/tree", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: destination + "/tree/same", contents: Data("old\n".utf8))
        FileManager.default.createFile(atPath: destination + "/tree/mine", contents: Data("mine\n".utf8))
        try CopyExtractor.place(work: work, entryName: "tree", into: destination, as: "tree", shownAs: "dest")
        #expect(scratch.contents("dest/tree/new") == "new\n" && scratch.contents("dest/tree/same") == "copied\n")
        #expect(scratch.contents("dest/tree/mine") == "mine\n")

        let clash = scratch.root + "/clash"
        mkdir(clash, 0o700)
        try CopyExtractor(workDirectory: clash, entryName: "tree").extract(from: try ArchiveReader(bytes: tar.finished, compression: .none, limits: .copies))
        let other = scratch.root + "/other"
        try FileManager.default.createDirectory(atPath: other + "/tree/new", withIntermediateDirectories: true)
        #expect(throws: MSBError.self) { try CopyExtractor.place(work: clash, entryName: "tree", into: other, as: "tree", shownAs: "other") }
        #expect(scratch.type("other/tree/same") == nil, "nothing moved before the clash was found")
    }
}
