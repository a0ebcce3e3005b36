import Foundation
import Glibc
@testable import MSBCore
import Testing

/// The start command's log (and the console's): a guest writing without end keeps at most
/// two caps on the host, the latest bytes; reads give the tail across both files.
@Suite struct BoundedLogFileTests {
    func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "boundedlog-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1 }

    @Test func aFloodKeepsTwoCapsOfTheLatestBytes() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/exec.log"
        let log = BoundedLogFile(path: path, capBytes: 4096)
        log.note("exec started")
        for index in 0..<1000 { log.append(Array("line \(index)\n".utf8)) }
        log.note("exec exited with status 0")
        #expect(size(path) <= 4096 && size(path + ".1") <= 4096)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let all = BoundedLogFile.read(path: path, maxBytes: 1 << 20)
        let text = String(decoding: all.bytes, as: UTF8.self)
        #expect(text.hasSuffix("line 999\n[msb] exec exited with status 0\n"))
        #expect(!text.contains("exec started"))
        #expect(all.bytes.count == size(path) + size(path + ".1"))
        // Asked for fewer bytes: the last ones, marked as cut.
        let tail = BoundedLogFile.read(path: path, maxBytes: 100)
        #expect(tail.truncated && tail.bytes == Array(all.bytes.suffix(100)))
        // Across the two files: the end of .1, then the current one.
        let across = BoundedLogFile.read(path: path, maxBytes: size(path) + 10)
        #expect(across.truncated && across.bytes == Array(all.bytes.suffix(size(path) + 10)))
    }

    @Test func aChunkLargerThanTheCapIsSplitNotKeptWhole() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/exec.log"
        BoundedLogFile(path: path, capBytes: 1024).append([UInt8](repeating: 0x61, count: 10_000))
        #expect(size(path) <= 1024 && size(path + ".1") <= 1024)
    }

    @Test func aLinkAtThePathIsNotFollowed() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let target = directory + "/target"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: target))
        let path = directory + "/exec.log"
        #expect(symlink(target, path) == 0)
        BoundedLogFile(path: path, capBytes: 1024, truncate: true).append(Array("evil".utf8))
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep")
        #expect(BoundedLogFile.read(path: path, maxBytes: 100).bytes.isEmpty)
    }

    @Test func aMissingLogReadsAsEmpty() {
        let read = BoundedLogFile.read(path: "/nonexistent/exec.log", maxBytes: 100)
        #expect(read.bytes.isEmpty && !read.truncated)
    }
}

/// `msb logs -f`: what is appended after the start, across rotations, in order.
@Suite struct BoundedLogFileFollowTests {
    @Test func followingGetsEveryNewByteAcrossRotations() throws {
        let directory = try BoundedLogFileTests().scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/exec.log"
        BoundedLogFile(path: path, capBytes: 1000).append(Array("before the follow\n".utf8))
        let expected = (0..<400).map { "line \($0)\n" }.joined()
        let writerDone = LockedFlag()
        Thread.detachNewThread {
            // The supervisor's side: a file rotates about every 200 ms, far apart from the
            // follower's 10 ms rounds (two rotations between rounds would lose the middle file).
            let log = BoundedLogFile(path: path, capBytes: 1000)
            usleep(50_000)
            for line in (0..<400).map({ "line \($0)\n" }) {
                log.append(Array(line.utf8))
                if line.hasSuffix("0\n") { usleep(20_000) }
            }
            writerDone.set()
        }
        var received: [UInt8] = []
        let result = BoundedLogFile.follow(path: path, pollSeconds: 0.01, keepGoing: { !writerDone.value }) { bytes in
            received += bytes
            return true
        }
        #expect(result)
        // Several rotations happened (4 KB through 1000-byte files): nothing lost, nothing twice.
        #expect(String(decoding: received, as: UTF8.self) == expected)
    }

    @Test func aGoneReaderEndsTheFollow() throws {
        let directory = try BoundedLogFileTests().scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/exec.log"
        let log = BoundedLogFile(path: path, capBytes: 1000)
        var rounds = 0
        let result = BoundedLogFile.follow(path: path, pollSeconds: 0.01, keepGoing: {
            rounds += 1
            log.append(Array("more\n".utf8))
            return rounds < 1000
        }) { _ in false }
        #expect(!result && rounds < 5)
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}
