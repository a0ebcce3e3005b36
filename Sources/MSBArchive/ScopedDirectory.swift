import Glibc

/// A directory that extraction writes into, reached only through descriptors. Every
/// component is opened relative to its parent with `O_NOFOLLOW`, so the kernel never
/// follows a symbolic link on the way and the host's `/` is never reachable: a link on
/// the way is either refused or resolved by this code as if the directory were `/`
/// (how the guest will see it; `..` stops at the top).
package final class ScopedDirectory {
    package enum Symlinks { case refuse, resolveInside }

    /// Why a walk stopped; the paths are relative to the directory (never host paths).
    package enum Failure: Error, Equatable {
        case symlinkOnPath(String)
        case notDirectory(String)
        case missing(String)
        case tooDeep
        case tooManyLinks(String)
        case system(String, Int32)

        package var text: String {
            switch self {
            case .symlinkOnPath(let path): "'\(ArchivePath.printable(path))' on its path is a symbolic link"
            case .notDirectory(let path): "'\(ArchivePath.printable(path))' on its path is not a directory"
            case .missing(let path): "'\(ArchivePath.printable(path))' on its path does not exist"
            case .tooDeep: "it lies more than \(ScopedDirectory.maxDepth) directories deep"
            case .tooManyLinks(let path): "too many symbolic links at '\(ArchivePath.printable(path))'"
            case .system(let what, let code): "\(what): \(String(cString: strerror(code)))"
            }
        }
    }

    /// Deeper trees are refused; it also bounds the recursion of removals.
    package static let maxDepth = 256
    package let fd: Int32

    package init(path: String) throws(Failure) {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("cannot open the extraction directory", errno) }
    }

    deinit { close(fd) }

    /// Opens the directory named by `components` (relative to this one); the caller closes
    /// the descriptor. Missing directories are made with `createMode` when `create` is set.
    package func openDirectory(_ components: [String], create: Bool, symlinks: Symlinks,
                               createMode: mode_t = 0o755) throws(Failure) -> Int32 {
        var resolved: [String] = []
        var current = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard current >= 0 else { throw .system("cannot duplicate a descriptor", errno) }
        var queue = components[...]
        var hops = 0
        while let component = queue.popFirst() {
            if component.isEmpty || component == "." { continue }
            if component == ".." {
                // Only from a symlink's target: archive paths with `..` never get here.
                if !resolved.isEmpty {
                    resolved.removeLast()
                    close(current)
                    current = try reopen(resolved)
                }
                continue
            }
            guard resolved.count < Self.maxDepth else { close(current); throw .tooDeep }
            var next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT && create {
                guard mkdirat(current, component, createMode) == 0 || errno == EEXIST else {
                    let code = errno
                    close(current)
                    throw .system("cannot create '\(ArchivePath.printable((resolved + [component]).joined(separator: "/")))'", code)
                }
                next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next >= 0 {
                close(current)
                current = next
                resolved.append(component)
                continue
            }
            let openError = errno
            let here = (resolved + [component]).joined(separator: "/")
            guard Self.fileType(current, component) == S_IFLNK else {
                close(current)
                throw openError == ENOENT ? .missing(here) : .notDirectory(here)
            }
            guard symlinks == .resolveInside else { close(current); throw .symlinkOnPath(here) }
            hops += 1
            guard hops <= 40, let target = Self.linkTarget(current, component) else { close(current); throw .tooManyLinks(here) }
            if target.hasPrefix("/") {
                resolved = []
                close(current)
                current = try reopen([])
            }
            queue = (target.split(separator: "/").map(String.init) + queue)[...]
        }
        return current
    }

    /// Opens a path of real directories again from the top (after a `..`).
    private func reopen(_ components: [String]) throws(Failure) -> Int32 {
        var current = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard current >= 0 else { throw .system("cannot duplicate a descriptor", errno) }
        for component in components {
            let next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(current)
            guard next >= 0 else { throw .notDirectory(component) }
            current = next
        }
        return current
    }

    /// The file type (`S_IFREG`, …) of `name` in `directory`, not following a link; nil if absent.
    package static func fileType(_ directory: Int32, _ name: String) -> mode_t? {
        var info = stat()
        guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    package static func linkTarget(_ directory: Int32, _ name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(truncatingIfNeeded: PATH_MAX) + 1)
        let count = readlinkat(directory, name, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Removes `name` from `directory`, a whole tree if it is one, never following a link.
    package static func remove(_ directory: Int32, _ name: String, depth: Int = 0) throws(Failure) {
        if unlinkat(directory, name, 0) == 0 || errno == ENOENT { return }
        guard errno == EISDIR || errno == EPERM else { throw .system("cannot remove '\(ArchivePath.printable(name))'", errno) }
        guard depth < maxDepth + 8 else { throw .tooDeep }
        let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else { throw .system("cannot remove '\(ArchivePath.printable(name))'", errno) }
        defer { close(child) }
        for entry in try entries(child) { try remove(child, entry, depth: depth + 1) }
        guard unlinkat(directory, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
            throw .system("cannot remove '\(ArchivePath.printable(name))'", errno)
        }
    }

    /// Like `remove`, but first makes every directory of the tree writable again, so a
    /// tree unpacked with read-only directories goes without root's override.
    package static func removeWritable(_ directory: Int32, _ name: String) throws(Failure) {
        makeWritable(directory, name)
        try remove(directory, name)
    }

    private static func makeWritable(_ parent: Int32, _ name: String, depth: Int = 0) {
        guard depth < maxDepth + 8, fileType(parent, name) == S_IFDIR else { return }
        _ = fchmodat(parent, name, 0o700, 0)  // a directory (checked just above), so nothing is followed
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        for child in (try? entries(fd)) ?? [] { makeWritable(fd, child, depth: depth + 1) }
    }

    /// The names in an open directory (without `.` and `..`).
    package static func entries(_ directory: Int32) throws(Failure) -> [String] {
        let copy = fcntl(directory, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw .system("cannot list a directory", errno)
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [String] = []
        while let item = readdir(stream) {
            let name = entryName(item)
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The name in a `readdir` record (a fixed-size, NUL-terminated field).
    package static func entryName(_ item: UnsafeMutablePointer<dirent>) -> String {
        withUnsafeBytes(of: item.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
