import CMSBSys
import Foundation
import Glibc
import Testing

/// The template keeper's sealed copy of a template's RAM: what QEMU maps copy-on-write.
/// A QEMU under a guest's control holds a read-write descriptor of it (QEMU 7.2 opens its
/// RAM read-write); the seals must make that descriptor useless for changing it.
@Suite struct SealedMemoryTests {
    /// A sparse 8 MiB file with data at 0 and at 4 MiB.
    static func sparseFile() throws -> (path: String, fd: Int32) {
        let path = NSTemporaryDirectory() + "msb-sealed-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        try #require(ftruncate(fd, 8 << 20) == 0)
        let first = Array("first page".utf8), later = Array("four MiB in".utf8)
        try #require(pwrite(fd, first, first.count, 0) == first.count)
        try #require(pwrite(fd, later, later.count, 4 << 20) == later.count)
        return (path, fd)
    }

    @Test func theCopyHasTheSameBytesAndCannotBeChanged() throws {
        let source = try Self.sparseFile()
        defer { close(source.fd); unlink(source.path) }
        let memory = msb_sealed_memory_copy(source.fd, 8 << 20)
        try #require(memory >= 0, "\(String(cString: strerror(errno)))")
        defer { close(memory) }
        var info = stat()
        fstat(memory, &info)
        #expect(info.st_size == 8 << 20)
        var buffer = [UInt8](repeating: 0xFF, count: 11)
        #expect(pread(memory, &buffer, 10, 0) == 10 && Array(buffer.prefix(10)) == Array("first page".utf8))
        #expect(pread(memory, &buffer, 11, 4 << 20) == 11 && buffer == Array("four MiB in".utf8))
        #expect(pread(memory, &buffer, 4, 1 << 20) == 4 && buffer.prefix(4).allSatisfy { $0 == 0 })

        // The attacks a QEMU holding it could make: write, grow/shrink, a writable shared
        // mapping, and reopening it read-write through /proc (what QEMU itself does).
        #expect(pwrite(memory, "X", 1, 0) == -1 && errno == EPERM)
        #expect(ftruncate(memory, 1 << 20) == -1)
        #expect(ftruncate(memory, 16 << 20) == -1)
        #expect(mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memory, 0) == MAP_FAILED)
        let reopened = open("/proc/self/fd/\(memory)", O_RDWR)
        #expect(reopened >= 0, "QEMU must still be able to open it read-write")
        if reopened >= 0 {
            #expect(pwrite(reopened, "X", 1, 0) == -1 && errno == EPERM)
            // What QEMU does: a private mapping, written freely, changing nothing shared.
            let mapped = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, reopened, 0)
            #expect(mapped != MAP_FAILED)
            if let mapped, mapped != MAP_FAILED {
                mapped.storeBytes(of: UInt8(ascii: "X"), as: UInt8.self)
                munmap(mapped, 4096)
            }
            close(reopened)
        }
        #expect(pread(memory, &buffer, 1, 0) == 1 && buffer[0] == UInt8(ascii: "f"))
        // All four seals are on, F_SEAL_SEAL among them: none can be added or lifted.
        let addSeals: Int32 = 1033, getSeals: Int32 = 1034  // F_ADD_SEALS, F_GET_SEALS (not in Swift's Glibc)
        #expect(fcntl(memory, getSeals) == 0b1111)  // SEAL | SHRINK | GROW | WRITE
        #expect(fcntl(memory, addSeals, 0) == -1)
    }

    @Test func aSourceShorterThanTheMemoryIsPaddedWithZeros() throws {
        let source = try Self.sparseFile()
        defer { close(source.fd); unlink(source.path) }
        let memory = msb_sealed_memory_copy(source.fd, 16 << 20)
        try #require(memory >= 0)
        defer { close(memory) }
        var buffer = [UInt8](repeating: 0xFF, count: 4)
        #expect(pread(memory, &buffer, 4, 12 << 20) == 4 && buffer.allSatisfy { $0 == 0 })
    }
}
