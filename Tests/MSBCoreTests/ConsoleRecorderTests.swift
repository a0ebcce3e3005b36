import Foundation
import Glibc
import MSBOS
import MSBVMM
import Testing

/// The guest writes its serial console; the host keeps a bounded tail of it.
@Suite struct ConsoleRecorderTests {
    @Test func aFloodKeepsAtMostTwoCapsOfTheLatestOutput() throws {
        let directory = NSTemporaryDirectory() + "console-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        let path = directory + "/console.log"
        ConsoleRecorder(fd: pair[0], path: path, capBytes: 64 << 10).start()
        // 4 MiB, as `cat /dev/zero > /dev/ttyS0` would send, then a last line.
        let block = [UInt8](repeating: 0x7a, count: 32 << 10)
        for _ in 0..<128 { try FileDescriptorIO.writeAll(pair[1], block) }
        try FileDescriptorIO.writeAll(pair[1], Array("the end\n".utf8))
        close(pair[1])
        let settled = MonotonicClock.now() + 10
        var sizes: [Int] = []
        repeat {
            usleep(50_000)
            sizes = [path, path + ".1"].map { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0 }
        } while !(String(decoding: FileDescriptorIO.readFile(path, limitBytes: 1 << 20) ?? [], as: UTF8.self).hasSuffix("the end\n"))
            && MonotonicClock.now() < settled
        #expect(sizes.allSatisfy { $0 <= 64 << 10 }, "\(sizes)")
        #expect(String(decoding: FileDescriptorIO.readFile(path, limitBytes: 1 << 20) ?? [], as: UTF8.self).hasSuffix("the end\n"))
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(files == ["console.log", "console.log.1"])
    }
}
