import Glibc
import MSBCore

/// Applies OCI image layers, in order, to a root directory on the host, with these rules:
/// - whiteouts (`.wh.NAME`) and opaque directories (`.wh..wh..opq`) hide what lower layers
///   put there; a whiteout must name a plain entry (not empty, `.`, `..`);
/// - names with `..` or a leading `/` are refused (the whole layer fails);
/// - symbolic links on the way to an entry are resolved as the guest will see them, inside
///   the root (`/bin -> usr/bin` leads to root/usr/bin); the kernel never follows one
///   (`ScopedDirectory`), and an entry replaces a link at its own name instead of writing
///   through it;
/// - owners and modes (setuid included: it is the guest's file system) are kept;
/// - hard links must name an earlier file inside the root;
/// - device nodes, FIFOs and sockets are skipped (a sandbox gets its /dev from the kernel);
/// - `ArchiveLimits`: entries, name length, uncompressed bytes (all layers together).
package struct LayerExtractor {
    package let root: ScopedDirectory
    package private(set) var skippedEntries = 0
    package private(set) var limits: ArchiveLimits
    /// Uncompressed bytes used by the layers applied so far.
    package private(set) var usedBytes: Int64 = 0

    package init(root: String, limits: ArchiveLimits = .layers) throws(MSBError) {
        do { self.root = try ScopedDirectory(path: root) } catch {
            throw MSBError(.internalError, "cannot apply layers: \(error.text)")
        }
        self.limits = limits
    }

    /// Applies one layer; `open` gives a fresh reader each time (the layer is read twice:
    /// whiteouts first, since they hide only what lower layers hold).
    package mutating func apply(label: String, _ open: (ArchiveLimits) throws(MSBError) -> ArchiveReader) throws(MSBError) {
        var layerLimits = limits
        layerLimits.usedBytes = usedBytes
        // Pass 1: whiteouts.
        let first = try open(layerLimits)
        var hides: [(directory: [String], name: String?)] = []
        while let entry = try first.next() {
            try first.skipData()
            let components = try Self.components(entry.path, label)
            guard let name = components.last, name.hasPrefix(".wh.") else { continue }
            let directory = Array(components.dropLast())
            if name == ".wh..wh..opq" {
                hides.append((directory, nil))
            } else if name.hasPrefix(".wh..wh.") {
                continue  // aufs bookkeeping (.wh..wh.plnk and the like): nothing to hide
            } else {
                let hidden = String(name.dropFirst(4))
                guard ArchivePath.isPlainName(hidden) else {
                    throw MSBError(.invalidArgument, "\(label): refused whiteout '\(ArchivePath.printable(entry.path))': it must name one entry")
                }
                hides.append((directory, hidden))
            }
        }
        for hide in hides {
            // A directory that is not there (or is not one) hides nothing.
            guard let directory = try? root.openDirectory(hide.directory, create: false, symlinks: .resolveInside) else { continue }
            defer { close(directory) }
            do {
                let names = if let name = hide.name { [name] } else { try ScopedDirectory.entries(directory) }
                for name in names {
                    try ScopedDirectory.remove(directory, name)
                }
            } catch {
                throw MSBError(.internalError, "\(label): cannot apply the whiteout in '\(ArchivePath.printable(hide.directory.joined(separator: "/")))': \(error.text)")
            }
        }
        // Pass 2: this layer's own entries.
        let second = try open(layerLimits)
        while let entry = try second.next() {
            let components = try Self.components(entry.path, label)
            guard let name = components.last, !name.hasPrefix(".wh.") else { try second.skipData(); continue }
            do {
                try extract(entry, components, second, label)
            } catch let failure as ScopedDirectory.Failure {
                throw MSBError(.invalidArgument, "\(label): cannot extract '\(ArchivePath.printable(entry.path))': \(failure.text)")
            } catch let error as MSBError {
                throw error
            } catch {
                throw MSBError(.internalError, "\(label): cannot extract '\(ArchivePath.printable(entry.path))'")
            }
        }
        usedBytes += second.consumedBytes
    }

    static func components(_ path: String, _ label: String) throws(MSBError) -> [String] {
        switch ArchivePath.components(path) {
        case .success(let components): return components
        case .failure(.empty): return ["."]  // the root itself ("./"): nothing to do
        case .failure(let problem):
            let why = problem == .tooLong ? "its name is too long" : problem == .absolute ? "it is an absolute name" : "it leaves the root"
            throw MSBError(.invalidArgument, "\(label): refused entry '\(ArchivePath.printable(path))': \(why)")
        }
    }

    private mutating func extract(_ entry: ArchiveEntry, _ components: [String], _ reader: ArchiveReader, _ label: String) throws {
        guard components != ["."] else { return try reader.skipData() }
        switch entry.kind {
        case .characterDevice, .blockDevice, .fifo, .socket, .unknown:
            skippedEntries += 1
            return try reader.skipData()
        default: break
        }
        let parent = try root.openDirectory(Array(components.dropLast()), create: true, symlinks: .resolveInside)
        defer { close(parent) }
        let name = components[components.count - 1]
        let existing = ScopedDirectory.fileType(parent, name)
        if existing != nil && !(entry.kind == .directory && existing == S_IFDIR) {
            try ScopedDirectory.remove(parent, name)
        }
        switch entry.kind {
        case .directory:
            if existing != S_IFDIR && mkdirat(parent, name, 0o700) != 0 { throw ScopedDirectory.Failure.system("cannot create it", errno) }
            let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw ScopedDirectory.Failure.system("cannot open it", errno) }
            defer { close(fd) }
            _ = fchown(fd, entry.uid, entry.gid)
            _ = fchmod(fd, mode_t(entry.mode))
            try reader.skipData()
        case .file:
            let fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ScopedDirectory.Failure.system("cannot create it", errno) }
            defer { close(fd) }
            try reader.readData { (chunk: UnsafeRawBufferPointer) throws(MSBError) in try Self.writeAll(fd, chunk) }
            // chown first: it clears setuid, which the mode then sets again.
            _ = fchown(fd, entry.uid, entry.gid)
            _ = fchmod(fd, mode_t(entry.mode))
            var times = [timespec(tv_sec: Int(truncatingIfNeeded: entry.modifiedSeconds), tv_nsec: 0),
                         timespec(tv_sec: Int(truncatingIfNeeded: entry.modifiedSeconds), tv_nsec: 0)]
            _ = futimens(fd, &times)
        case .symlink:
            // Stored as is: the guest resolves it inside its own root; here it is never followed.
            guard symlinkat(entry.linkTarget, parent, name) == 0 else { throw ScopedDirectory.Failure.system("cannot create it", errno) }
            _ = fchownat(parent, name, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW)
            try reader.skipData()
        case .hardLink:
            guard case .success(let source) = ArchivePath.components(entry.linkTarget) else {
                throw MSBError(.invalidArgument, "\(label): refused hard link '\(ArchivePath.printable(entry.path))' to '\(ArchivePath.printable(entry.linkTarget))': it leaves the root")
            }
            let sourceParent = try root.openDirectory(Array(source.dropLast()), create: false, symlinks: .resolveInside)
            defer { close(sourceParent) }
            let sourceName = source[source.count - 1]
            let type = ScopedDirectory.fileType(sourceParent, sourceName)
            guard type == S_IFREG || type == S_IFLNK else {
                throw MSBError(.invalidArgument, "\(label): refused hard link '\(ArchivePath.printable(entry.path))': '\(ArchivePath.printable(entry.linkTarget))' is not an earlier file in the root")
            }
            guard linkat(sourceParent, sourceName, parent, name, 0) == 0 else { throw ScopedDirectory.Failure.system("cannot link it", errno) }
            try reader.skipData()
        default:
            break
        }
    }

    static func writeAll(_ fd: Int32, _ chunk: UnsafeRawBufferPointer) throws(MSBError) {
        var offset = 0
        while offset < chunk.count {
            let written = write(fd, chunk.baseAddress.map { $0 + offset }, chunk.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw MSBError(.stateStore, "cannot write an extracted file: \(String(cString: strerror(errno)))") }
            offset += written
        }
    }
}
