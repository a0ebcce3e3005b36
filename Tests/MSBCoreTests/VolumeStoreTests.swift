import Foundation
import MSBClient
import Testing
@testable import MSBCore

/// Named volumes in the state store: create, list, remove, the in-use refusal, and what a
/// process killed half way leaves (never a listed half volume). Host directories of `-v`:
/// resolved where links lead and held to a server's allowed roots.
@Suite struct VolumeStoreTests {
    let paths: MSBPaths
    let scratch: String

    init() {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("msb-vol-\(UUID().uuidString)").path
        paths = MSBPaths(environment: ["MSB_HOME": scratch + "/home"])
    }

    func mode(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    func sandbox(_ name: String, mounting volumes: [String]) throws -> SandboxRecord {
        var config = SandboxConfig(name: name)
        config.volumes = try volumes.map { try VolumeMount.parse($0) }
        return SandboxRecord(config: config, status: .created, createdAt: Date())
    }

    @Test func createListRemove() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try StateStore(paths: paths)
        let made = try store.createVolume("data")
        #expect(made.name == "data")
        #expect(paths.volumeDataDirectory("data") == paths.home + "/volumes/data/data")
        #expect(mode(paths.volumesDirectory) == 0o700 && mode(paths.volumesDirectory + "/data") == 0o700)
        #expect(mode(paths.volumeDataDirectory("data")) == 0o755)
        _ = try store.createVolume("cache")
        #expect(try store.volumes().map(\.name) == ["cache", "data"])
        let again = #expect(throws: MSBError.self) { try store.createVolume("data") }
        #expect(again?.code == .alreadyExists && again?.message == "volume already exists: data")
        try store.removeVolume("data")
        #expect(try store.volumes().map(\.name) == ["cache"])
        #expect(!FileManager.default.fileExists(atPath: paths.volumesDirectory + "/data"))
        let missing = #expect(throws: MSBError.self) { try store.removeVolume("data") }
        #expect(missing?.code == .notFound && missing?.message == "volume not found: data")
        #expect(missing?.hint == "run 'msb volume ls' to see volumes")
        let bad = #expect(throws: MSBError.self) { try store.createVolume("../../etc") }
        #expect(bad?.code == .invalidArgument)
        #expect(try store.volume("../../etc") == nil)
    }

    @Test func aVolumeInUseIsNotRemoved() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try StateStore(paths: paths)
        // A sandbox's row and the volumes it mounts come together.
        try store.insert(try sandbox("web", mounting: ["data:/data", "/tmp:/host"]), creatingVolumesWithin: nil)
        #expect(try store.volumes().map(\.name) == ["data"])
        let refused = #expect(throws: MSBError.self) { try store.removeVolume("data") }
        #expect(refused?.code == .invalidState && refused?.message == "volume in use: data (by sandbox web)")
        #expect(refused?.hint == "remove that sandbox first ('msb rm web')")
        try store.insert(try sandbox("db", mounting: ["data:/d:ro"]), creatingVolumesWithin: nil)
        let twice = #expect(throws: MSBError.self) { try store.removeVolume("data") }
        #expect(twice?.message == "volume in use: data (by sandboxes web, db)")
        try store.delete("web")
        try store.delete("db")
        try store.removeVolume("data")
        #expect(try store.volumes().isEmpty)
    }

    @Test func aRefusedSandboxRowLeavesNoVolumeListed() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try StateStore(paths: paths)
        try store.insert(try sandbox("web", mounting: []), creatingVolumesWithin: nil)
        #expect(throws: MSBError.self) { try store.insert(try sandbox("web", mounting: ["fresh:/f"]), creatingVolumesWithin: nil) }
        #expect(try store.volumes().isEmpty)
        // Its directory was left by the rolled-back transaction; a create of the name clears it.
        _ = try store.createVolume("fresh")
        #expect(try store.volumes().map(\.name) == ["fresh"])
    }

    /// kill -9 between any two steps: a directory without its row, a row without its
    /// directory, or half-made work directories. None is listed; the next create succeeds.
    @Test func halfVolumesOfKilledProcessesAreNeverListed() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try StateStore(paths: paths)
        _ = try store.createVolume("kept")
        // Killed after the rename, before the row was committed.
        try FileManager.default.createDirectory(atPath: paths.volumeDataDirectory("orphan"), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: paths.volumeDataDirectory("orphan") + "/stale", contents: Data("old".utf8))
        // Killed while removing: the row's delete not committed, its directory moved aside.
        _ = try store.createVolume("rowonly")
        try FileManager.default.moveItem(atPath: paths.volumesDirectory + "/rowonly", toPath: paths.volumesDirectory + "/.old-x")
        // Killed while making one.
        try FileManager.default.createDirectory(atPath: paths.volumesDirectory + "/.new-y/data", withIntermediateDirectories: true)

        #expect(try store.volumes().map(\.name) == ["kept"])
        #expect(try store.volume("orphan") == nil && store.volume("rowonly") == nil)
        #expect(throws: MSBError.self) { try store.removeVolume("rowonly") }

        _ = try store.createVolume("orphan")
        _ = try store.createVolume("rowonly")
        #expect(try store.volumes().map(\.name) == ["kept", "orphan", "rowonly"])
        #expect(!FileManager.default.fileExists(atPath: paths.volumeDataDirectory("orphan") + "/stale"))
        let entries = try FileManager.default.contentsOfDirectory(atPath: paths.volumesDirectory).sorted()
        #expect(entries == ["kept", "orphan", "rowonly"])
    }

    @Test func aLimitCapsHowManyAreKept() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try StateStore(paths: paths)
        _ = try store.createVolume("a", limit: 1)
        let full = #expect(throws: MSBError.self) { try store.createVolume("b", limit: 1) }
        #expect(full?.code == .limitExceeded && full?.message == "volume limit reached: at most 1 volumes may be kept")
        #expect(throws: MSBError.self) { try store.insert(try sandbox("web", mounting: ["b:/b"]), creatingVolumesWithin: 1) }
        #expect(try store.get("web") == nil)
        // Mounting one that exists makes nothing.
        try store.insert(try sandbox("web", mounting: ["a:/a"]), creatingVolumesWithin: 1)
    }

    @Test func hostDirectoriesAreResolvedWhereLinksLead() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: scratch + "/allowed/real", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: scratch + "/secret", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: scratch + "/allowed/link", withDestinationPath: scratch + "/allowed/real")
        try fm.createSymbolicLink(atPath: scratch + "/allowed/escape", withDestinationPath: scratch + "/secret")
        fm.createFile(atPath: scratch + "/allowed/file", contents: Data())
        let root = try VolumeMount.resolvedHostDirectory(scratch)

        let linked = try VolumeMount.resolvingHostPaths([try VolumeMount.parse(scratch + "/allowed/link:/d:ro"), try VolumeMount.parse("n:/n")],
                                                        allowedRoots: nil)
        #expect(linked[0] == VolumeMount(source: .hostPath(root + "/allowed/real"), guestPath: "/d", readOnly: true))
        #expect(linked[1].source == .named("n"))
        for missing in ["/allowed/file", "/allowed/none"] {
            let error = #expect(throws: MSBError.self) {
                try VolumeMount.resolvingHostPaths([try VolumeMount.parse(scratch + missing + ":/d")], allowedRoots: nil)
            }
            #expect(error?.code == .invalidArgument && error?.message == "volume source is not a directory: \(scratch + missing)")
        }

        let allowed = [scratch + "/allowed"]
        _ = try VolumeMount.resolvingHostPaths([try VolumeMount.parse(scratch + "/allowed/link:/d")], allowedRoots: allowed)
        _ = try VolumeMount.resolvingHostPaths([try VolumeMount.parse(scratch + "/allowed:/d")], allowedRoots: allowed)
        let escape = #expect(throws: MSBError.self) {
            try VolumeMount.resolvingHostPaths([try VolumeMount.parse(scratch + "/allowed/escape:/d")], allowedRoots: allowed)
        }
        #expect(escape?.code == .accessDenied)
        #expect(escape?.message == "mounting host path \(scratch)/allowed/escape is not allowed on this server")
        let outside = #expect(throws: MSBError.self) {
            try VolumeMount.resolvingHostPaths([try VolumeMount.parse(scratch + "/secret:/d")], allowedRoots: allowed)
        }
        #expect(outside?.code == .accessDenied)
        // Outside as written: refused before the path is even looked at (no existence oracle).
        let absent = #expect(throws: MSBError.self) {
            try VolumeMount.resolvingHostPaths([try VolumeMount.parse("/no/such/dir:/d")], allowedRoots: allowed)
        }
        #expect(absent?.code == .accessDenied)
        #expect(!VolumeMount.lies(scratch + "/allowed2", inside: scratch + "/allowed"))
    }

    @Test func sizesCountRegularFilesAndFollowNoLinks() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: scratch + "/v/sub", withIntermediateDirectories: true)
        fm.createFile(atPath: scratch + "/v/a", contents: Data(count: 1000))
        fm.createFile(atPath: scratch + "/v/sub/b", contents: Data(count: 24))
        try fm.createSymbolicLink(atPath: scratch + "/v/root", withDestinationPath: "/")
        #expect(VolumeInfo.sizeBytes(of: scratch + "/v") == 1024)
        #expect(VolumeInfo.sizeBytes(of: scratch + "/v", maxEntries: 3) == nil)
    }

    @Test func snapshotsOfSandboxesWithVolumesAreRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try StateStore(paths: paths)
        try store.insert(try sandbox("web", mounting: ["data:/data"]), creatingVolumesWithin: nil)
        let error = #expect(throws: MSBError.self) { try LocalBackend(paths: paths).createSnapshot("snap", of: "web") }
        #expect(error?.code == .unsupported && error?.message == "failed to snapshot: sandbox web has volumes")
        let fork = #expect(throws: MSBError.self) {
            var config = SandboxConfig(name: "fork")
            config.snapshot = "snap"
            config.volumes = [try VolumeMount.parse("data:/data")]
            _ = try LocalBackend(paths: paths).create(config, start: false)
        }
        #expect(fork?.message == "a sandbox made from a snapshot cannot have volumes")
        let missing = #expect(throws: MSBError.self) {
            var config = SandboxConfig(name: "web2")
            config.volumes = [try VolumeMount.parse("/no/such/dir:/data")]
            _ = try LocalBackend(paths: paths).create(config, start: false)
        }
        #expect(missing?.message == "volume source is not a directory: /no/such/dir")
    }
}
