import Glibc
import MSBCore

/// Unpacks what `msb cp` receives from a sandbox, which is hostile, into a fresh empty work
/// directory on the host; `place` then moves the result to where the user asked. Rules:
/// - only the requested entry's subtree (every name starts with `entryName`);
/// - no `..`, no absolute names, nothing written through a symbolic link;
/// - symbolic links must resolve inside the copied tree (relative, never above its top,
///   also through other links); hard links only to earlier files of the copy;
/// - device files, FIFOs and sockets are refused;
/// - setuid, setgid and sticky bits are stripped (mode & 0777); owners are not restored:
///   everything belongs to the user running msb.
/// Any refusal ends the extraction; the caller removes the work directory, so the
/// destination is left as it was.
package final class CopyExtractor {
    private let work: ScopedDirectory
    private let entryName: String
    private var directories: [(components: [String], mode: mode_t, modifiedSeconds: Int64)] = []
    /// Links created so far, by path, for the final check that chains of links stay inside.
    private var links: [String: String] = [:]
    private var files: Set<String> = []
    /// Files and directories that came with setuid, setgid or sticky bits (stripped).
    package private(set) var strippedModes = 0

    package init(workDirectory: String, entryName: String) throws(MSBError) {
        do { work = try ScopedDirectory(path: workDirectory) } catch {
            throw MSBError(.internalError, "cannot unpack the copy: \(error.text)")
        }
        self.entryName = entryName
    }

    private static func refused(_ why: String) -> MSBError {
        MSBError(.accessDenied, "refused archive from the sandbox: \(why)")
    }

    private static func quoted(_ path: String) -> String { "'\(ArchivePath.printable(path))'" }

    package func extract(from reader: ArchiveReader) throws(MSBError) {
        while let entry = try reader.next() {
            try extract(entry, reader)
        }
        guard ScopedDirectory.fileType(work.fd, entryName) != nil else {
            throw Self.refused("it does not hold \(Self.quoted(entryName))")
        }
        for (path, target) in links where !Self.staysInside(path.split(separator: "/").map(String.init), target, links) {
            throw Self.refused("entry \(Self.quoted(path)) links outside the target (\(Self.quoted(target)))")
        }
        // Directory modes last, deepest first: a read-only directory must not stop its children.
        for directory in directories.sorted(by: { $0.components.count > $1.components.count }) {
            guard let fd = try? work.openDirectory(directory.components, create: false, symlinks: .refuse) else { continue }
            _ = fchmod(fd, directory.mode)
            var times = [timespec(tv_sec: Int(truncatingIfNeeded: directory.modifiedSeconds), tv_nsec: 0),
                         timespec(tv_sec: Int(truncatingIfNeeded: directory.modifiedSeconds), tv_nsec: 0)]
            _ = futimens(fd, &times)
            close(fd)
        }
    }

    /// The checked components of a name in the stream.
    private func checkedComponents(_ path: String) throws(MSBError) -> [String] {
        let what = "entry"
        switch ArchivePath.components(path) {
        case .success(let components):
            guard components.first == entryName else {
                throw Self.refused("\(what) \(Self.quoted(path)) is not part of \(Self.quoted(entryName))")
            }
            return components
        case .failure(.tooLong): throw MSBError(.limitExceeded, "refused archive from the sandbox: a name is longer than 4096 bytes")
        case .failure(.empty): throw Self.refused("\(what) \(Self.quoted(path)) has no name")
        case .failure: throw Self.refused("\(what) \(Self.quoted(path)) leaves the target")
        }
    }

    private func extract(_ entry: ArchiveEntry, _ reader: ArchiveReader) throws(MSBError) {
        let path = entry.path
        switch entry.kind {
        case .characterDevice, .blockDevice: throw Self.refused("entry \(Self.quoted(path)) is a device file")
        case .fifo: throw Self.refused("entry \(Self.quoted(path)) is a FIFO")
        case .socket: throw Self.refused("entry \(Self.quoted(path)) is a socket")
        case .unknown: throw Self.refused("entry \(Self.quoted(path)) is of an unknown type")
        default: break
        }
        let components = try checkedComponents(path)
        let parent: Int32
        do {
            parent = try work.openDirectory(Array(components.dropLast()), create: true, symlinks: .refuse, createMode: 0o700)
        } catch {
            switch error {
            case .symlinkOnPath(let link): throw Self.refused("entry \(Self.quoted(path)) writes through the symbolic link \(Self.quoted(link))")
            case .notDirectory(let file): throw Self.refused("entry \(Self.quoted(path)) lies under \(Self.quoted(file)), which is not a directory")
            default: throw MSBError(.internalError, "cannot unpack \(Self.quoted(path)): \(error.text)")
            }
        }
        defer { close(parent) }
        let name = components[components.count - 1]
        let key = components.joined(separator: "/")
        let existing = ScopedDirectory.fileType(parent, name)
        if existing != nil && !(entry.kind == .directory && existing == S_IFDIR) {
            // A later entry of the same name wins, as with tar; only inside the work directory.
            do { try ScopedDirectory.remove(parent, name) } catch {
                throw MSBError(.internalError, "cannot unpack \(Self.quoted(path)): \(error.text)")
            }
            links[key] = nil
            files.remove(key)
        }
        if entry.mode & 0o7000 != 0 && entry.kind != .symlink { strippedModes += 1 }
        let mode = mode_t(entry.mode & 0o777)
        switch entry.kind {
        case .directory:
            if existing != S_IFDIR && mkdirat(parent, name, 0o700) != 0 { throw systemError(path) }
            directories.append((components, mode, entry.modifiedSeconds))
            try reader.skipData()
        case .file:
            let fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw systemError(path) }
            defer { close(fd) }
            try reader.readData { (chunk: UnsafeRawBufferPointer) throws(MSBError) in try LayerExtractor.writeAll(fd, chunk) }
            _ = fchmod(fd, mode)
            var times = [timespec(tv_sec: Int(truncatingIfNeeded: entry.modifiedSeconds), tv_nsec: 0),
                         timespec(tv_sec: Int(truncatingIfNeeded: entry.modifiedSeconds), tv_nsec: 0)]
            _ = futimens(fd, &times)
            files.insert(key)
        case .symlink:
            guard Self.staysInside(components, entry.linkTarget, [:]) else {
                throw Self.refused("entry \(Self.quoted(path)) links outside the target (\(Self.quoted(entry.linkTarget)))")
            }
            guard symlinkat(entry.linkTarget, parent, name) == 0 else { throw systemError(path) }
            links[key] = entry.linkTarget
            try reader.skipData()
        case .hardLink:
            guard case .success(let source) = ArchivePath.components(entry.linkTarget), source.first == entryName else {
                throw Self.refused("entry \(Self.quoted(path)) is a hard link outside the target (\(Self.quoted(entry.linkTarget)))")
            }
            let sourceKey = source.joined(separator: "/")
            guard files.contains(sourceKey),
                  let sourceParent = try? work.openDirectory(Array(source.dropLast()), create: false, symlinks: .refuse) else {
                throw Self.refused("entry \(Self.quoted(path)) is a hard link to \(Self.quoted(entry.linkTarget)), not to an earlier file of the copy")
            }
            defer { close(sourceParent) }
            guard ScopedDirectory.fileType(sourceParent, source[source.count - 1]) == S_IFREG,
                  linkat(sourceParent, source[source.count - 1], parent, name, 0) == 0 else { throw systemError(path) }
            files.insert(key)
            try reader.skipData()
        default:
            break
        }
    }

    private func systemError(_ path: String) -> MSBError {
        MSBError(.internalError, "cannot unpack \(Self.quoted(path)): \(String(cString: strerror(errno)))")
    }

    /// Whether the link at `components` pointing to `target` stays inside the copied tree,
    /// following the other links of the copy (`links`, by path) on the way.
    static func staysInside(_ components: [String], _ target: String, _ links: [String: String]) -> Bool {
        var stack = Array(components.dropLast())
        guard !stack.isEmpty else { return false }  // the top entry itself: its target is beside the destination
        var queue = target[...].split(separator: "/", omittingEmptySubsequences: true).map(String.init)[...]
        guard !target.hasPrefix("/") else { return false }
        var hops = 0
        while let component = queue.popFirst() {
            if component == "." { continue }
            if component == ".." {
                guard stack.count > 1 else { return false }
                stack.removeLast()
                continue
            }
            if let next = links[(stack + [component]).joined(separator: "/")] {
                hops += 1
                guard hops <= 40, !next.hasPrefix("/") else { return false }
                queue = (next.split(separator: "/", omittingEmptySubsequences: true).map(String.init) + queue)[...]
                continue
            }
            stack.append(component)
        }
        return true
    }

    /// Moves the unpacked `entryName` from the work directory to `directory/finalName`:
    /// renamed if nothing is there, else merged into the existing directory (nothing is
    /// moved if a file would replace a directory or the other way round).
    package static func place(work: String, entryName: String, into directory: String, as finalName: String,
                              shownAs destination: String) throws(MSBError) {
        let workFd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        let destinationFd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer {
            if workFd >= 0 { close(workFd) }
            if destinationFd >= 0 { close(destinationFd) }
        }
        guard workFd >= 0, destinationFd >= 0 else {
            throw MSBError(.internalError, "cannot copy to \(destination): \(String(cString: strerror(errno)))")
        }
        try checkMerge(workFd, entryName, destinationFd, finalName, "", destination)
        try merge(workFd, entryName, destinationFd, finalName, destination)
    }

    private static func checkMerge(_ from: Int32, _ name: String, _ into: Int32, _ target: String, _ shown: String,
                                   _ destination: String) throws(MSBError) {
        guard let existing = ScopedDirectory.fileType(into, target) else { return }
        let incoming = ScopedDirectory.fileType(from, name)
        let here = shown.isEmpty ? destination : destination + "/" + shown
        if (existing == S_IFDIR) != (incoming == S_IFDIR) {
            throw MSBError(.invalidArgument, "cannot copy to \(destination): \(here) \(existing == S_IFDIR ? "is a directory" : "is not a directory")")
        }
        guard existing == S_IFDIR else { return }
        try forEachChild(from, name, into, target,
                         orThrow: MSBError(.internalError, "cannot copy to \(destination): cannot open \(here)")) { fromChild, child, intoChild throws(MSBError) in
            try checkMerge(fromChild, child, intoChild, child, shown.isEmpty ? child : shown + "/" + child, destination)
        }
    }

    /// Runs `body` for each entry of directory `name` in `from`, with it and its counterpart
    /// `target` in `into` open (no link followed); `failure` is thrown if either will not open.
    private static func forEachChild(_ from: Int32, _ name: String, _ into: Int32, _ target: String, orThrow failure: @autoclosure () -> MSBError,
                                     _ body: (Int32, String, Int32) throws(MSBError) -> Void) throws(MSBError) {
        let fromChild = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        let intoChild = openat(into, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        defer {
            if fromChild >= 0 { close(fromChild) }
            if intoChild >= 0 { close(intoChild) }
        }
        guard fromChild >= 0, intoChild >= 0 else { throw failure() }
        for child in (try? ScopedDirectory.entries(fromChild)) ?? [] {
            try body(fromChild, child, intoChild)
        }
    }

    private static func merge(_ from: Int32, _ name: String, _ into: Int32, _ target: String, _ destination: String) throws(MSBError) {
        if ScopedDirectory.fileType(into, target) == S_IFDIR && ScopedDirectory.fileType(from, name) == S_IFDIR {
            try forEachChild(from, name, into, target,
                             orThrow: MSBError(.internalError, "cannot copy to \(destination): \(String(cString: strerror(errno)))")) { fromChild, child, intoChild throws(MSBError) in
                try merge(fromChild, child, intoChild, child, destination)
            }
            return
        }
        // rename(2) replaces a file or link at the target itself; it never follows one.
        guard renameat(from, name, into, target) == 0 else {
            throw MSBError(.internalError, "cannot copy to \(destination): \(String(cString: strerror(errno)))")
        }
    }
}
