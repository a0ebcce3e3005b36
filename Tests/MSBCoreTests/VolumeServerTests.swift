import Foundation
import Glibc
import MSBCore
import MSBOS
import MSBVolumes
import Testing

/// The host side of a volume, without a VM: the private, read-only copy of a directory a
/// volume's server gets, and the refusal of a source whose path now leads elsewhere.
@Suite(.enabled(if: geteuid() == 0, "needs root (mount namespaces)"))
struct VolumeServerTests {
    static func scratch() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("msb-volume-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/source", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/mountpoint", withIntermediateDirectories: true)
        try "kept".write(toFile: directory + "/source/file", atomically: true, encoding: .utf8)
        return directory
    }

    /// Runs `script` with a copy of `source`'s tree on `mountPoint` as its working directory.
    static func runInTree(_ source: String, mountPoint: String, _ tree: SpawnSpec.MountTree, _ script: String) throws -> Int32? {
        let directory = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(directory >= 0)
        defer { close(directory) }
        var spec = SpawnSpec("/bin/sh", arguments: ["/bin/sh", "-c", script])
        spec.inheritedDescriptors = [directory]
        spec.workingDirectory = mountPoint
        spec.mountTree = tree
        let child = try ChildProcess.spawn(spec)
        return child.wait().exitCode
    }

    @Test func aReadOnlyTreeRefusesWritesEvenToRootAndLeavesTheHostsMountsAlone() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let mountsBefore = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        // Even root cannot write through it (the guest's remount happens in the guest's
        // kernel and changes nothing here: VolumeTests checks that end to end).
        let status = try Self.runInTree(directory + "/source", mountPoint: directory + "/mountpoint", .readOnly,
            "cat file >/dev/null && ! touch new 2>/dev/null && ! rm file 2>/dev/null")
        #expect(status == 0)
        #expect(!FileManager.default.fileExists(atPath: directory + "/source/new"))
        #expect(FileManager.default.fileExists(atPath: directory + "/source/file"))
        // The copy lived only in the child's namespace: nothing is mounted here.
        #expect(try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) == mountsBefore)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/mountpoint").isEmpty)
    }

    @Test func aReadWriteTreeWritesThroughToTheDirectory() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try Self.runInTree(directory + "/source", mountPoint: directory + "/mountpoint", .readWrite, "echo hi > written") == 0)
        #expect(try String(contentsOfFile: directory + "/source/written", encoding: .utf8) == "hi\n")
    }

    /// A host path is stored canonical at create; a symbolic link put on it since (by a
    /// guest writing into another volume, say) must not redirect the volume.
    @Test func aSourceThatNowResolvesThroughASymbolicLinkIsRefused() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createSymbolicLink(atPath: directory + "/link", withDestinationPath: directory + "/source")
        try FileManager.default.createDirectory(atPath: directory + "/work", withIntermediateDirectories: true)
        let launch = VolumeServer.Launch(source: directory + "/link", readOnly: false, tag: "msbvol0", guestPath: "/data",
                                         workDirectory: directory + "/work", socketPath: directory + "/v0.sock",
                                         logPath: directory + "/work/log")
        #expect(throws: MSBError.self) { _ = try VolumeServer.start(launch) }
        var parent = launch
        parent.source = directory + "/link/../source"
        #expect(throws: MSBError.self) { _ = try VolumeServer.start(parent) }
    }
}
