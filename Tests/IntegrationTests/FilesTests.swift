import Foundation
import Testing

/// `msb fs` on a real sandbox, the guest agent doing the file operations: locally and
/// through `msb server` (the `sandbox.fs.*` methods).
@Suite(.serialized) struct FilesTests {
    func exercise(run: ([String], Data?) throws -> MSBResult, sandbox: String) throws {
        let directory = "/tmp/fs-\(UInt32.random(in: 0...UInt32.max))"
        // 5 MB of random bytes: more than one range of a call and many frames of the agent.
        var generator = SystemRandomNumberGenerator()
        let bytes = Data((0..<5_000_000).map { _ in UInt8.random(in: 0...255, using: &generator) })

        #expect(try run(["fs", "mkdir", "-p", "\(sandbox):\(directory)/sub"], nil).status == 0)
        let wrote = try run(["fs", "write", "\(sandbox):\(directory)/blob.bin", "--mode", "600"], bytes)
        #expect(wrote.status == 0, "\(wrote.stderr)")
        let read = try run(["fs", "cat", "\(sandbox):\(directory)/blob.bin"], nil)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout == bytes, "\(read.stdout.count) bytes back of \(bytes.count)")
        // The guest's own tools see the same file.
        let inGuest = try run(["exec", sandbox, "--", "stat", "-c", "%s %a", "\(directory)/blob.bin"], nil)
        #expect(inGuest.out == "5000000 600\n")

        let listed = try run(["fs", "ls", "\(sandbox):\(directory)", "--format", "json"], nil)
        let entries = (try? JSONSerialization.jsonObject(with: listed.stdout)) as? [[String: Any]] ?? []
        #expect(entries.map { $0["name"] as? String } == ["blob.bin", "sub"], "\(listed.out) \(listed.stderr)")
        #expect(entries.first?["size"] as? Int == 5_000_000 && entries.last?["type"] as? String == "directory")
        let stat = try run(["fs", "stat", "\(sandbox):\(directory)/blob.bin", "--format", "json"], nil)
        let info = ((try? JSONSerialization.jsonObject(with: stat.stdout)) as? [[String: Any]])?.first
        #expect(info?["mode"] as? Int == 0o600 && info?["type"] as? String == "file")

        #expect(try run(["fs", "mv", "\(sandbox):\(directory)/blob.bin", "\(directory)/sub/moved.bin"], nil).status == 0)
        #expect(try run(["fs", "rm", "\(sandbox):\(directory)/sub/moved.bin"], nil).status == 0)
        let gone = try run(["fs", "stat", "\(sandbox):\(directory)/sub/moved.bin"], nil)
        #expect(gone.status == 1 && gone.stderr == "error: cannot stat \(sandbox):\(directory)/sub/moved.bin: no such file or directory\n")
        let notEmpty = try run(["fs", "rm", "\(sandbox):\(directory)"], nil)
        #expect(notEmpty.status == 1 && notEmpty.stderr.contains("directory not empty"))
        #expect(try run(["fs", "rm", "-r", "\(sandbox):\(directory)"], nil).status == 0)
        #expect(try run(["exec", sandbox, "--", "test", "-e", directory], nil).status == 1)

        let missing = try run(["fs", "cat", "\(sandbox):/no/such/file"], nil)
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: cannot read \(sandbox):/no/such/file: no such file or directory\n")
        let isDirectory = try run(["fs", "cat", "\(sandbox):/etc"], nil)
        #expect(isDirectory.status == 1 && isDirectory.stderr.hasPrefix("error: cannot read \(sandbox):/etc: is a directory"))

        // '..' cannot climb out of the guest's root, and is refused before the guest is asked.
        let escape = try run(["fs", "cat", "\(sandbox):/../../etc/hostname"], nil)
        #expect(escape.status == 2 && escape.stderr.hasPrefix("error: guest path must not contain '..'"))
        let root = try run(["fs", "ls", "\(sandbox):/", "--format", "json"], nil)
        let names = ((try? JSONSerialization.jsonObject(with: root.stdout)) as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(names.contains("etc") && names.contains("proc"), "\(names)")
        // A FIFO is never opened (it would block the agent).
        #expect(try run(["exec", sandbox, "--", "mkfifo", "/tmp/fs-fifo"], nil).status == 0)
        let fifo = try run(["fs", "cat", "\(sandbox):/tmp/fs-fifo"], nil)
        #expect(fifo.status == 2 && fifo.stderr.contains("not a regular file"), "\(fifo.stderr)")
        _ = try run(["fs", "rm", "\(sandbox):/tmp/fs-fifo"], nil)
    }

    @Test func filesLocally() throws {
        try exercise(run: { try MSBHarness.run($0, stdin: $1) }, sandbox: SharedSandbox.name)
    }

    @Test func filesThroughTheServer() throws {
        try exercise(run: { try TestServer.shared.msb($0, key: TestServer.adminKey, stdin: $1) }, sandbox: ServerTests.remote)
    }
}
