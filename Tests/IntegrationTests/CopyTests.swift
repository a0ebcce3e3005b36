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

    /// A compromised guest's `sh`, first in the agent's PATH: asked by msb cp for
    /// /crafted/hostile-NAME, it sends the crafted stream /crafted/hostile-NAME.tar
    /// (Fixtures/hostile_tar.py) instead of running tar; anything else runs the real sh.
    /// (Swapping `tar` is not enough: busybox's sh runs its own tar applet.)
    static let hostileShell = """
        #!/bin/sh
        case "$4" in /crafted/hostile-*) exec cat "$4.tar";; esac
        exec /bin/sh "$@"
        """

    /// Each crafted stream and what msb must answer (exit 1).
    static let refusedStreams: [(name: String, message: String)] = [
        ("bashrc", "entry '.bashrc' is not part of 'hostile-bashrc'"),
        ("dotdot", "entry 'hostile-dotdot/../../planted' leaves the target"),
        ("absolute", "entry '/tmp/msb-cp-planted' leaves the target"),
        ("symlink", "entry 'hostile-symlink/etc' links outside the target ('/etc')"),
        ("writethrough", "entry 'hostile-writethrough/self/x' writes through the symbolic link 'hostile-writethrough/self'"),
        ("toplink", "entry 'hostile-toplink' links outside the target ('/root')"),
        ("hardlink", "entry 'hostile-hardlink/passwd' is a hard link outside the target ('/etc/passwd')"),
        ("device", "entry 'hostile-device/sda' is a device file"),
    ]

    static func output(_ argv: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return data
    }

    /// Every file under `root` with its type, mode, owner and contents.
    static func snapshot(_ root: String) -> [String: String] {
        var result: [String: String] = [:]
        let items = FileManager.default.enumerator(atPath: root)
        while let item = items?.nextObject() as? String {
            var info = stat()
            guard lstat(root + "/" + item, &info) == 0 else { continue }
            let bytes = info.st_mode & S_IFMT == S_IFREG ? FileManager.default.contents(atPath: root + "/" + item) ?? Data() : Data()
            let contents = "\(bytes.count):\(bytes.reduce(UInt64(0)) { $0 &* 1_099_511_628_211 &+ UInt64($1) })"
            result[item] = "\(String(info.st_mode, radix: 8)) \(info.st_uid) \(contents)"
        }
        return result
    }

    /// Bytes in files present after but not before (or changed): what a copy wrote.
    static func bytesWritten(_ before: [String: String], _ after: [String: String], root: String) -> Int {
        after.filter { before[$0.key] != $0.value }.reduce(0) { total, item in
            total + (((try? FileManager.default.attributesOfItem(atPath: root + "/" + item.key))?[.size] as? Int) ?? 0)
        }
    }

    func hostileStreams(run: ([String], Data?) throws -> MSBResult, sandbox: String) throws {
        let fixture = RegistryTests.fixtures + "/hostile_tar.py"
        for name in Self.refusedStreams.map(\.name) + ["setuid"] {
            let stream = try Self.output(["python3", fixture, name])
            #expect(stream.count >= 1024)
            let upload = try run(["exec", sandbox, "--", "sh", "-c", "mkdir -p /crafted/hostile-\(name) && cat > /crafted/hostile-\(name).tar"],
                                 stream)
            #expect(upload.status == 0, "\(upload.stderr)")
        }
        let installed = try run(["exec", sandbox, "--", "sh", "-c",
                                 "mkdir -p /usr/local/bin && cat > /tmp/hostile-sh && chmod 755 /tmp/hostile-sh && mv /tmp/hostile-sh /usr/local/bin/sh"],
                                Data(Self.hostileShell.utf8))
        #expect(installed.status == 0)
        defer { _ = try? run(["exec", sandbox, "--", "rm", "-rf", "/usr/local/bin/sh", "/crafted"], nil) }

        let root = try Self.makeTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dest = root + "/dest"
        try FileManager.default.createDirectory(atPath: dest + "/sub", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dest + "/.bashrc", contents: Data("mine\n".utf8))
        _ = FileManager.default.createFile(atPath: dest + "/sub/keep", contents: Data("keep\n".utf8))
        let before = Self.snapshot(root)
        var tried = 0, bytesOutside = 0
        for stream in Self.refusedStreams {
            for target in [dest, root + "/new-\(stream.name)"] {
                let result = try run(["cp", "\(sandbox):/crafted/hostile-\(stream.name)", target], nil)
                tried += 1
                #expect(result.status == 1, "\(stream.name)")
                #expect(result.stderr == "error: refused archive from the sandbox: \(stream.message)\n", "\(stream.name)")
                let after = Self.snapshot(root)
                #expect(after == before, "\(stream.name) into \(target)")
                bytesOutside += Self.bytesWritten(before, after, root: root)
            }
        }
        for planted in ["/tmp/msb-cp-planted", "/etc/msb-cp-planted", MSBHarness.home + "/planted", root + "/planted"] {
            #expect(!FileManager.default.fileExists(atPath: planted), "\(planted)")
        }
        // Accepted, stripped of setuid and setgid, owned by the user running msb.
        let accepted = try run(["cp", "\(sandbox):/crafted/hostile-setuid", dest], nil)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        var info = stat()
        #expect(lstat(dest + "/hostile-setuid/suid", &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o755 && info.st_uid == geteuid())
        #expect(lstat(dest + "/hostile-setuid", &info) == 0 && info.st_mode & 0o7777 == 0o755)
        #expect(bytesOutside == 0)
        print("CopyTests: \(tried + 1) hostile cp streams from \(sandbox), \(bytesOutside) bytes written outside a target")
    }

    @Test func hostileStreamsFromTheGuestAreRefusedLocally() throws {
        try hostileStreams(run: { try MSBHarness.run($0, stdin: $1) }, sandbox: SharedSandbox.name)
    }

    @Test func hostileStreamsFromTheGuestAreRefusedThroughTheServer() throws {
        try hostileStreams(run: { try TestServer.shared.msb($0, key: TestServer.adminKey, stdin: $1) }, sandbox: ServerTests.remote)
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
