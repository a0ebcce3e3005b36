import Foundation
import Testing

/// `msb cp` both ways on a real sandbox, locally and through `msb server`.
@Suite(.serialized) struct CopyTests {
    /// A host tree with binary data, a nested directory with its own mode, and a symlink.
    static func makeTree() throws -> String {
        let root = MSBHarness.home + "/cp-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root + "/tree/sub", withIntermediateDirectories: true)
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 3) })
        FileManager.default.createFile(atPath: root + "/tree/data.bin", contents: bytes)
        FileManager.default.createFile(atPath: root + "/tree/sub/a.txt", contents: Data("hello\n".utf8))
        try FileManager.default.createSymbolicLink(atPath: root + "/tree/sub/link", withDestinationPath: "a.txt")
        chmod(root + "/tree/sub", 0o751)
        return root
    }

    func roundTrip(run: ([String]) throws -> MSBResult, sandbox: String) throws {
        let root = try Self.makeTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let guestDir = "/tmp/cp-\(UInt32.random(in: 0...UInt32.max))"
        #expect(try run(["exec", sandbox, "--", "mkdir", guestDir]).status == 0)
        let up = try run(["cp", root + "/tree", "\(sandbox):\(guestDir)"])
        #expect(up.status == 0, "\(up.stderr)")
        let listing = try run(["exec", sandbox, "--", "sh", "-c",
                               "cd \(guestDir)/tree && stat -c '%n %a %s' data.bin sub/a.txt && stat -c '%n %a' sub && readlink sub/link"])
        #expect(listing.out == "data.bin 644 300000\nsub/a.txt 644 6\nsub 751\na.txt\n")

        let down = try run(["cp", "\(sandbox):\(guestDir)/tree", root + "/back"])
        #expect(down.status == 0, "\(down.stderr)")
        #expect(FileManager.default.contents(atPath: root + "/back/data.bin") == FileManager.default.contents(atPath: root + "/tree/data.bin"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/back/sub/link") == "a.txt")
        let mode = try FileManager.default.attributesOfItem(atPath: root + "/back/sub")[.posixPermissions] as? Int
        #expect(mode == 0o751)

        // A file under a new name, and into an existing directory.
        #expect(try run(["cp", root + "/tree/sub/a.txt", "\(sandbox):\(guestDir)/renamed.txt"]).status == 0)
        #expect(try run(["exec", sandbox, "--", "cat", "\(guestDir)/renamed.txt"]).out == "hello\n")
        #expect(try run(["cp", "\(sandbox):\(guestDir)/renamed.txt", root]).status == 0)
        #expect(FileManager.default.contents(atPath: root + "/renamed.txt") == Data("hello\n".utf8))

        let missing = try run(["cp", "\(sandbox):/no/such", root + "/x"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: cannot copy from \(sandbox):/no/such: no such file or directory: /no/such\n")
        #expect(!FileManager.default.fileExists(atPath: root + "/x"))
        let noDir = try run(["cp", root + "/tree", "\(sandbox):/no/such/dir"])
        #expect(noDir.status == 1 && noDir.stderr == "error: cannot copy into \(sandbox):/no/such/dir: no such directory: /no/such\n")
    }

    @Test func copiesBothWaysLocally() throws {
        try roundTrip(run: { try MSBHarness.run($0) }, sandbox: SharedSandbox.name)
    }

    @Test func copiesBothWaysThroughTheServer() throws {
        try roundTrip(run: { try TestServer.shared.msb($0, key: TestServer.adminKey) }, sandbox: ServerTests.remote)
    }

    @Test func badArgumentsAreUsageErrors() throws {
        let neither = try MSBHarness.run(["cp", "a", "b"])
        #expect(neither.status == 2 && neither.stderr.hasPrefix("error: one of SRC and DEST must be a sandbox path NAME:PATH\n"))
        let both = try MSBHarness.run(["cp", "x:/a", "y:/b"])
        #expect(both.status == 2 && both.stderr.hasPrefix("error: copying between two sandboxes is not supported\n"))
        let relative = try MSBHarness.run(["cp", "a", "web:tmp"])
        #expect(relative.status == 2 && relative.stderr.hasPrefix("error: the sandbox path in 'web:tmp' must be absolute\n"))
        let host = try MSBHarness.run(["cp", "/no/such/file", "web:/tmp"])
        #expect(host.status == 1 && host.stderr == "error: cannot copy /no/such/file: No such file or directory\n")
    }
}
