import Glibc

/// The one thing msb reads from a qcow2 header: the backing file an overlay names.
package enum QCOW2 {
    /// The backing file name of the qcow2 image at `path`, or nil when it has none or the
    /// file is not qcow2. Bounds-checked: the header is the guest's disk's, not ours to trust.
    package static func backingFile(of path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 20)
        guard pread(fd, &header, 20, 0) == 20, header[0..<4].elementsEqual([0x51, 0x46, 0x49, 0xfb]) else { return nil }
        let offset = header[8..<16].reduce(0 as UInt64) { $0 << 8 | UInt64(truncatingIfNeeded: $1) }
        let size = header[16..<20].reduce(0 as UInt32) { $0 << 8 | UInt32(truncatingIfNeeded: $1) }
        // qemu limits backing file names to 1023 bytes, stored within the first cluster.
        guard size > 0, size <= 1023, offset >= 20, offset <= 1 << 16 else { return nil }
        let count = Int(truncatingIfNeeded: size), position = off_t(truncatingIfNeeded: offset)  // both bounded above
        var name = [UInt8](repeating: 0, count: count)
        guard pread(fd, &name, count, position) == count else { return nil }
        return String(decoding: name, as: UTF8.self)
    }
}
