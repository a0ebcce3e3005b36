import Glibc
import MSBProtocol

/// The Files API's guest side: each `fileRequest` is one short system call sequence on the
/// guest's own file system (the agent runs chrooted in the guest's root, so `/` is the
/// guest's). Nothing is kept between requests. Files are opened non-blocking and must be
/// regular files, so a FIFO or a device can never stall the agent's one loop.
enum GuestFiles {
    static func serve(_ request: FileRequest) -> FileReply {
        guard let path = normalized(request.path) else {
            return .failure(.invalidPath, "not an absolute guest path")
        }
        switch request.operation {
        case .read: return read(path, offset: request.offset, length: request.length)
        case .write: return write(path, offset: request.offset, data: request.data, mode: request.mode)
        case .list: return list(path, from: request.offset, count: request.length)
        case .stat:
            var info = stat()
            guard lstat(path, &info) == 0 else { return failure(errno) }
            return FileReply(entries: [entry(name: lastComponent(path), info)])
        case .makeDirectory: return makeDirectory(path, mode: request.mode == 0 ? 0o755 : request.mode & 0o7777, parents: request.recursive)
        case .remove:
            guard path != "/" else { return .failure(.permission, "refusing to remove /") }
            return remove(path, recursive: request.recursive)
        case .rename:
            guard let destination = normalized(request.destination) else { return .failure(.invalidPath, "not an absolute guest path") }
            guard path != "/", destination != "/" else { return .failure(.permission, "refusing to rename /") }
            return Glibc.rename(path, destination) == 0 ? FileReply() : failure(errno)
        }
    }

    /// `/a//b/./c` → `/a/b/c`; nil for relative paths, `..`, NUL or overlong ones. The host
    /// normalises too: this is the guest's own check of what it is asked.
    static func normalized(_ path: String) -> String? {
        guard path.hasPrefix("/"), !path.utf8.contains(0), path.utf8.count <= FileRequest.maxPathBytes else { return nil }
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." { return nil }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    private static func lastComponent(_ path: String) -> String {
        path == "/" ? "/" : String(path.split(separator: "/").last ?? "/")
    }

    private static func failure(_ code: Int32) -> FileReply {
        let text = String(cString: strerror(code))
        switch code {
        case ENOENT: return .failure(.notFound, text)
        case EISDIR: return .failure(.isADirectory, text)
        case ENOTDIR: return .failure(.notADirectory, text)
        case EACCES, EPERM, EROFS: return .failure(.permission, text)
        case EEXIST: return .failure(.exists, text)
        case ENOTEMPTY: return .failure(.notEmpty, text)
        case EFBIG, ENAMETOOLONG: return .failure(.tooLarge, text)
        case ELOOP: return .failure(.invalidPath, text)
        default: return .failure(.failed, text)
        }
    }

    private static func entry(name: String, _ info: stat) -> FileEntry {
        let kind: FileEntry.Kind
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        return FileEntry(name: name, kind: kind, sizeBytes: UInt64(clamping: info.st_size), mode: info.st_mode & 0o7777,
                         modifiedSeconds: Int64(info.st_mtim.tv_sec))
    }

    /// Opens a regular file (never a FIFO or device), or says why not.
    private enum Opened {
        case success(Int32)
        case failure(FileReply)
    }

    private static func openRegular(_ path: String, _ flags: Int32, mode: mode_t = 0o644) -> Opened {
        let fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode)
        guard fd >= 0 else { return .failure(failure(errno)) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { let code = errno; close(fd); return .failure(failure(code)) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .success(fd)
        case S_IFDIR: close(fd); return .failure(.failure(.isADirectory, "is a directory"))
        default: close(fd); return .failure(.failure(.notRegularFile, "not a regular file"))
        }
    }

    private static func read(_ path: String, offset: UInt64, length: UInt32) -> FileReply {
        // Far enough below Int64.max that offset + one chunk fits off_t.
        guard offset <= UInt64(Int64.max - Int64(FileRequest.maxChunkBytes)) else { return .failure(.tooLarge, "offset out of range") }
        let fd: Int32
        switch openRegular(path, O_RDONLY) {
        case .success(let opened): fd = opened
        case .failure(let reply): return reply
        }
        defer { close(fd) }
        var info = stat()
        _ = fstat(fd, &info)
        let wanted = min(Int(length), FileRequest.maxChunkBytes)
        var data = [UInt8](repeating: 0, count: wanted)
        var filled = 0
        while filled < wanted {
            let n = data.withUnsafeMutableBytes { buffer in
                pread(fd, buffer.baseAddress.map { $0 + filled }, wanted - filled, off_t(offset) + off_t(filled))
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return failure(errno) }
            if n == 0 { break }
            filled += n
        }
        data.removeLast(wanted - filled)
        return FileReply(data: data, total: UInt64(clamping: info.st_size))
    }

    private static func write(_ path: String, offset: UInt64, data: [UInt8], mode: UInt32) -> FileReply {
        guard offset <= UInt64(Int64.max - Int64(FileRequest.maxChunkBytes)) else { return .failure(.tooLarge, "offset out of range") }
        // Offset 0 starts the file afresh; later chunks go into the file that one made.
        let flags = offset == 0 ? O_WRONLY | O_CREAT | O_TRUNC : O_WRONLY
        let fd: Int32
        switch openRegular(path, flags, mode: mode == 0 ? 0o644 : mode_t(mode & 0o7777)) {
        case .success(let opened): fd = opened
        case .failure(let reply): return reply
        }
        defer { close(fd) }
        if offset == 0 && mode != 0 && fchmod(fd, mode_t(mode & 0o7777)) != 0 { return failure(errno) }
        var written = 0
        while written < data.count {
            let n = data.withUnsafeBytes { buffer in
                pwrite(fd, buffer.baseAddress.map { $0 + written }, data.count - written, off_t(offset) + off_t(written))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return failure(n < 0 ? errno : EIO) }
            written += n
        }
        var info = stat()
        _ = fstat(fd, &info)
        return FileReply(total: UInt64(clamping: info.st_size))
    }

    private static func list(_ path: String, from start: UInt64, count: UInt32) -> FileReply {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return failure(errno) }
        guard let directory = fdopendir(fd) else { let code = errno; close(fd); return failure(code) }
        defer { closedir(directory) }
        var names: [String] = []
        while let item = readdir(directory) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        names.sort()
        let first = Int(clamping: min(start, UInt64(names.count)))
        let last = min(names.count, first + min(Int(count), FileReply.maxEntries))
        var entries: [FileEntry] = []
        for name in names[first..<last] {
            var info = stat()
            guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }  // gone meanwhile
            entries.append(entry(name: name, info))
        }
        return FileReply(entries: entries, total: UInt64(names.count))
    }

    private static func makeDirectory(_ path: String, mode: UInt32, parents: Bool) -> FileReply {
        guard parents else { return mkdir(path, mode_t(mode)) == 0 ? FileReply() : failure(errno) }
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode_t(mode)) == 0 { continue }
            let code = errno
            var info = stat()
            guard code == EEXIST, stat(current, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                return failure(code == EEXIST ? ENOTDIR : code)
            }
        }
        return FileReply()
    }

    private static func remove(_ path: String, recursive: Bool) -> FileReply {
        var info = stat()
        guard lstat(path, &info) == 0 else { return failure(errno) }
        guard info.st_mode & S_IFMT == S_IFDIR else { return unlink(path) == 0 ? FileReply() : failure(errno) }
        if recursive {
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { return failure(errno) }
            let code = removeContents(of: fd)
            guard code == 0 else { return failure(code) }
        }
        return rmdir(path) == 0 ? FileReply() : failure(errno)
    }

    /// Empties the directory open at `fd` (and closes it) without following a link: each
    /// subdirectory is opened relative to its parent with O_NOFOLLOW. Returns an errno or 0.
    private static func removeContents(of fd: Int32) -> Int32 {
        guard let directory = fdopendir(fd) else { let code = errno; close(fd); return code }
        defer { closedir(directory) }
        var names: [String] = []
        while let item = readdir(directory) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        for name in names {
            var info = stat()
            guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { return errno }
                let code = removeContents(of: child)
                guard code == 0 else { return code }
                guard unlinkat(fd, name, AT_REMOVEDIR) == 0 else { return errno }
            } else if unlinkat(fd, name, 0) != 0 && errno != ENOENT {
                return errno
            }
        }
        return 0
    }
}
