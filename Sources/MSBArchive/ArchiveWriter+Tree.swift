import Glibc
import MSBCore

extension ArchiveWriter {
    /// Adds a host file or directory tree as `name`, never following a symbolic link;
    /// hard links inside the tree stay hard links. Devices, FIFOs and sockets are refused.
    package func addTree(at hostPath: String, as name: String) throws(MSBError) {
        var firstNames: [HardLinkKey: String] = [:]
        try addNode(hostPath, name, &firstNames)
    }

    private struct HardLinkKey: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    private func addNode(_ hostPath: String, _ name: String, _ firstNames: inout [HardLinkKey: String]) throws(MSBError) {
        var info = stat()
        guard lstat(hostPath, &info) == 0 else { throw Self.hostError(hostPath) }
        var entry = ArchiveEntry(path: name, kind: .file, mode: UInt32(truncatingIfNeeded: info.st_mode) & 0o7777, uid: info.st_uid, gid: info.st_gid,
                                 sizeBytes: Int64(truncatingIfNeeded: info.st_size), modifiedSeconds: Int64(truncatingIfNeeded: info.st_mtim.tv_sec))
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            if info.st_nlink > 1 {
                let key = HardLinkKey(device: UInt64(truncatingIfNeeded: info.st_dev), inode: UInt64(truncatingIfNeeded: info.st_ino))
                if let first = firstNames[key] {
                    entry.kind = .hardLink
                    entry.linkTarget = first
                    entry.sizeBytes = 0
                    return try add(entry)
                }
                firstNames[key] = name
            }
            let fd = open(hostPath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw Self.hostError(hostPath) }
            defer { close(fd) }
            try add(entry)
            // Exactly the declared size: a file that grows is cut, one that shrinks is padded.
            var left = entry.sizeBytes
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
            defer { buffer.deallocate() }
            while left > 0 {
                let count = read(fd, buffer.baseAddress, Int(truncatingIfNeeded: min(Int64(truncatingIfNeeded: buffer.count), left)))
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw Self.hostError(hostPath) }
                if count == 0 { break }
                try writeData(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                left -= Int64(truncatingIfNeeded: count)
            }
        case S_IFDIR:
            entry.kind = .directory
            entry.sizeBytes = 0
            try add(entry)
            for child in try Self.children(hostPath) {
                try addNode(hostPath + "/" + child, name + "/" + child, &firstNames)
            }
        case S_IFLNK:
            entry.kind = .symlink
            entry.sizeBytes = 0
            var target = [CChar](repeating: 0, count: Int(truncatingIfNeeded: PATH_MAX) + 1)
            let count = readlink(hostPath, &target, target.count - 1)
            guard count >= 0 else { throw Self.hostError(hostPath) }
            entry.linkTarget = String(decoding: target[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            try add(entry)
        default:
            throw MSBError(.unsupported, "cannot copy \(hostPath): not a regular file, directory or symbolic link")
        }
    }

    private static func children(_ path: String) throws(MSBError) -> [String] {
        guard let directory = opendir(path) else { throw hostError(path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let item = readdir(directory) {
            let name = ScopedDirectory.entryName(item)
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    private static func hostError(_ path: String) -> MSBError {
        MSBError(errno == ENOENT ? .notFound : .internalError, "cannot copy \(path): \(String(cString: strerror(errno)))")
    }
}
