import CMSBSys
import Foundation
import MSBCore
import MSBOS

/// Applies OCI layers, in order, to a root directory: whiteouts (`.wh.NAME`) and opaque
/// directories (`.wh..wh..opq`) hide what lower layers put there, file modes and owners
/// are kept, hard and symbolic links are made, device nodes are skipped. No entry can
/// reach outside the root: `..` entries are refused and every symlink on the way is
/// resolved as if the root were `/`.
struct LayerApplier {
    let root: String
    private(set) var skippedEntries = 0

    init(root: String) { self.root = root }

    mutating func apply(layer path: String, mediaType: String) throws(MSBError) {
        // Pass 1: whiteouts apply to the layers below, before this layer's own files.
        var whiteouts: [[String]] = []
        var opaque: [[String]] = []
        try readLayer(path, mediaType: mediaType) { (reader: inout TarReader, entry: TarReader.Entry) throws(MSBError) in
            try reader.body(of: entry) { (_: [UInt8]) throws(MSBError) in }
            guard let components = Self.components(entry.path), let name = components.last else { return }
            if name == ".wh..wh..opq" {
                opaque.append(Array(components.dropLast()))
            } else if name.hasPrefix(".wh.") {
                whiteouts.append(components.dropLast() + [String(name.dropFirst(4))])
            }
        }
        for directory in opaque {
            guard let resolved = try? resolve(directory, create: false) else { continue }
            for child in (try? FileManager.default.contentsOfDirectory(atPath: resolved)) ?? [] {
                try? FileManager.default.removeItem(atPath: resolved + "/" + child)
            }
        }
        for hidden in whiteouts {
            guard let parent = try? resolve(Array(hidden.dropLast()), create: false) else { continue }
            try? FileManager.default.removeItem(atPath: parent + "/" + hidden.last!)
        }
        // Pass 2: this layer's entries.
        try readLayer(path, mediaType: mediaType) { (reader: inout TarReader, entry: TarReader.Entry) throws(MSBError) in
            guard let components = Self.components(entry.path), let name = components.last, !name.hasPrefix(".wh.") else {
                if Self.components(entry.path) == nil { skippedEntries += 1 }
                try reader.body(of: entry) { (_: [UInt8]) throws(MSBError) in }
                return
            }
            try extract(entry, components: components, reader: &reader)
        }
    }

    /// Splits an archive path; nil for paths that try to climb out (`..`).
    static func components(_ path: String) -> [String]? {
        let parts = path.split(separator: "/").map(String.init).filter { $0 != "." && !$0.isEmpty }
        if parts.contains("..") { return nil }
        return parts.isEmpty ? nil : parts
    }

    /// The host path of `components` inside the root, following symlinks as the guest
    /// would (absolute targets start again at the root; `..` stops at the root).
    func resolve(_ components: [String], create: Bool) throws(MSBError) -> String {
        var resolved: [String] = []
        var queue = components[...]
        var hops = 0
        while let component = queue.popFirst() {
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = root + "/" + (resolved + [component]).joined(separator: "/")
            var info = stat()
            if lstat(candidate, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFLNK {
                    hops += 1
                    guard hops <= 40, let target = try? FileManager.default.destinationOfSymbolicLink(atPath: candidate) else {
                        throw MSBError(.invalidArgument, "too many symbolic links under \(candidate)")
                    }
                    if target.hasPrefix("/") { resolved = [] }
                    queue = (target.split(separator: "/").map(String.init) + queue)[...]
                    continue
                }
                guard info.st_mode & S_IFMT == S_IFDIR || queue.isEmpty else {
                    throw MSBError(.invalidArgument, "\(candidate) is not a directory")
                }
                resolved.append(component)
            } else {
                guard create, mkdir(candidate, 0o755) == 0 else {
                    throw MSBError(.invalidArgument, "missing directory \(candidate)")
                }
                resolved.append(component)
            }
        }
        return resolved.isEmpty ? root : root + "/" + resolved.joined(separator: "/")
    }

    private mutating func extract(_ entry: TarReader.Entry, components: [String], reader: inout TarReader) throws(MSBError) {
        let parent: String
        do { parent = try resolve(Array(components.dropLast()), create: true) } catch {
            skippedEntries += 1
            try reader.body(of: entry) { (_: [UInt8]) throws(MSBError) in }
            return
        }
        let target = parent + "/" + components.last!
        var existing = stat()
        let exists = lstat(target, &existing) == 0
        let existingIsDirectory = exists && existing.st_mode & S_IFMT == S_IFDIR
        if exists && !(entry.kind == .directory && existingIsDirectory) {
            try? FileManager.default.removeItem(atPath: target)
        }
        switch entry.kind {
        case .directory:
            if !existingIsDirectory { mkdir(target, 0o755) }
            chown(target, entry.uid, entry.gid)
            chmod(target, mode_t(entry.mode))
            try reader.body(of: entry) { (_: [UInt8]) throws(MSBError) in }
        case .file:
            let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw MSBError(.stateStore, "cannot create \(target): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            try reader.body(of: entry) { (chunk: [UInt8]) throws(MSBError) in
                var offset = 0
                while offset < chunk.count {
                    let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress! + offset, chunk.count - offset) }
                    guard n > 0 else { throw MSBError(.stateStore, "cannot write \(target): \(String(cString: strerror(errno)))") }
                    offset += n
                }
            }
            fchown(fd, entry.uid, entry.gid)
            fchmod(fd, mode_t(entry.mode))
        case .symlink:
            // Stored as is: the guest resolves it inside its own root.
            symlink(entry.linkTarget, target)
            lchown(target, entry.uid, entry.gid)
        case .hardLink:
            guard let source = Self.components(entry.linkTarget),
                  let sourceParent = try? resolve(Array(source.dropLast()), create: false),
                  link(sourceParent + "/" + source.last!, target) == 0 else {
                skippedEntries += 1
                return
            }
        case .other:
            // Device nodes, FIFOs: a sandbox gets its /dev from the kernel.
            skippedEntries += 1
            try reader.body(of: entry) { (_: [UInt8]) throws(MSBError) in }
        }
    }

    private func readLayer(_ path: String, mediaType: String,
                           _ each: (inout TarReader, TarReader.Entry) throws(MSBError) -> Void) throws(MSBError) {
        let argv = mediaType.hasSuffix("gzip") ? ["/bin/gzip", "-dc", path]
            : mediaType.hasSuffix("zstd") ? ["/usr/bin/zstd", "-dc", path] : ["/bin/cat", path]
        var pipe: [Int32] = [-1, -1]
        guard msb_pipe(&pipe, 0) == 0 else { throw MSBError(.internalError, "cannot create a pipe: \(String(cString: strerror(errno)))") }
        // The decompressor's complaints go to an unnamed file: read once it is done, never filling a pipe.
        let errorsFd = FileDescriptorIO.anonymousFile()
        defer { if errorsFd >= 0 { close(errorsFd) } }
        var spec = SpawnSpec(argv[0], arguments: argv)
        spec.standardOutput = pipe[1]
        spec.standardError = errorsFd >= 0 ? errorsFd : nil
        spec.dieWithParent = true
        let decompressor: ChildProcess
        do { decompressor = try ChildProcess.spawn(spec) } catch {
            close(pipe[0]); close(pipe[1])
            throw MSBError(.internalError, "cannot decompress layer (\(mediaType)): \(error)")
        }
        close(pipe[1])
        defer { close(pipe[0]) }
        var reader = TarReader(fd: pipe[0])
        var failure: MSBError?
        do {
            while let entry = try reader.next() { try each(&reader, entry) }
        } catch {
            failure = error
        }
        // Drain whatever is left so the decompressor can finish.
        while (try? FileDescriptorIO.readSome(pipe[0])) != nil {}
        let status = decompressor.wait()
        if let failure { throw failure }
        guard status.succeeded else {
            let text = errorsFd >= 0 ? String(decoding: FileDescriptorIO.readAll(fromStart: errorsFd, limitBytes: 4096), as: UTF8.self) : ""
            throw MSBError(.invalidArgument, "layer could not be decompressed: \(text.isEmpty ? status.description : text)")
        }
    }
}
