import Foundation
import Glibc
import MSBCore
import MSBVMM
import Testing

/// The snapshot store: records, the disk-layer chain of snapshots of forks, and which
/// directories a supervisor may be asked to write a snapshot into (the request can come
/// from a remote client through a server's attach stream).
@Suite struct SnapshotStoreTests {
    final class Scratch {
        let directory = NSTemporaryDirectory() + "snapshots-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var store: SnapshotStore { SnapshotStore(directory: directory + "/snapshots") }

        init() throws {
            try FileManager.default.createDirectory(atPath: directory + "/snapshots", withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func record(_ name: String, parent: String? = nil) -> SnapshotRecord {
            let info = SnapshotInfo(name: name, source: "src", image: "python", imageDigest: nil, cpus: 1, memoryMiB: 256,
                                    createdAt: Date(timeIntervalSince1970: 1_700_000_000), sizeBytes: 0)
            return SnapshotRecord(info: info, config: SandboxConfig(name: "src", image: "python"), parent: parent)
        }

        func install(_ name: String, parent: String? = nil) throws {
            let work = try store.makeWorkDirectory()
            try store.install(work, record: record(name, parent: parent))
        }
    }

    @Test func installedSnapshotsAreListedAndTheirRecordsRead() throws {
        let scratch = try Scratch()
        try scratch.install("one")
        try scratch.install("two", parent: "one")
        #expect(scratch.store.list().map(\.info.name) == ["one", "two"])
        #expect(try scratch.store.record("two").parent == "one")
        #expect(throws: MSBError.self) { try scratch.install("one") }
    }

    @Test func aMissingSnapshotIsNotFoundAndABadNameIsRefused() throws {
        let scratch = try Scratch()
        let missing = #expect(throws: MSBError.self) { try scratch.store.record("nope") }
        #expect(missing?.description == "snapshot not found: nope")
        #expect(missing?.code == .notFound)
        #expect(throws: MSBError.self) { try scratch.store.record("../sandboxes") }
        #expect(throws: MSBError.self) { try scratch.store.record(".tmp-abcdef") }
    }

    @Test func diskLayersFollowParentsTopFirstAndAreBounded() throws {
        let scratch = try Scratch()
        try scratch.install("a")
        try scratch.install("b", parent: "a")
        #expect(try scratch.store.diskLayers("b") == [scratch.store.diskLayer("b"), scratch.store.diskLayer("a")])
        var previous = "b"
        for index in 0..<SnapshotStore.maxDiskLayers {
            try scratch.install("d\(index)", parent: previous)
            previous = "d\(index)"
        }
        #expect(throws: MSBError.self) { try scratch.store.diskLayers(previous) }
        // A parent that went missing breaks the chain loudly.
        try scratch.install("orphan", parent: "gone")
        #expect(throws: MSBError.self) { try scratch.store.diskLayers("orphan") }
    }

    /// Only an empty `.tmp-XXXXXX` of this store is a place a snapshot may be written to.
    @Test func onlyAnEmptyWorkDirectoryOfTheStoreIsAccepted() throws {
        let scratch = try Scratch()
        let work = try scratch.store.makeWorkDirectory()
        #expect(scratch.store.isEmptyWorkDirectory(work))
        #expect(!scratch.store.isEmptyWorkDirectory(scratch.directory))
        #expect(!scratch.store.isEmptyWorkDirectory("/tmp"))
        #expect(!scratch.store.isEmptyWorkDirectory(work + "/../" + (work as NSString).lastPathComponent))
        #expect(!scratch.store.isEmptyWorkDirectory(scratch.store.directory + "/.tmp-../../x"))
        // A link named like a work directory, pointing elsewhere.
        let link = scratch.store.directory + "/.tmp-linkxx"
        #expect(symlink(scratch.directory, link) == 0)
        #expect(!scratch.store.isEmptyWorkDirectory(link))
        // Not empty: a snapshot never overwrites anything.
        FileManager.default.createFile(atPath: work + "/memory.ram", contents: Data())
        #expect(!scratch.store.isEmptyWorkDirectory(work))
    }

    @Test func removedSnapshotsAreGone() throws {
        let scratch = try Scratch()
        try scratch.install("gone")
        scratch.store.remove("gone")
        #expect(!scratch.store.exists("gone"))
        #expect(scratch.store.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scratch.store.path("gone")))
    }
}
