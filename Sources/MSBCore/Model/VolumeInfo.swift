import Foundation

/// A named volume, as `msb volume ls` and `inspect` show it.
public struct VolumeInfo: Equatable, Sendable {
    public var name: String
    /// The server namespace it belongs to; `default` on a local host.
    public var namespace = "default"
    public var createdAt: Date
    /// Where its data lies on the host; nil for remote users, who never see host paths.
    public var hostPath: String?
    /// Bytes its files take; nil when not counted (`ls`) or too many files to count.
    public var sizeBytes: Int64?
    /// Sandboxes whose config mounts it.
    public var usedBy: [String]

    package init(name: String, namespace: String = "default", createdAt: Date, hostPath: String? = nil, sizeBytes: Int64? = nil,
                 usedBy: [String] = []) {
        self.name = name
        self.namespace = namespace
        self.createdAt = createdAt
        self.hostPath = hostPath
        self.sizeBytes = sizeBytes
        self.usedBy = usedBy
    }

    /// The bytes of the regular files under `directory`, symlinks never followed; nil past
    /// `maxEntries` entries (a guest can make millions of files: inspect must stay quick).
    package static func sizeBytes(of directory: String, maxEntries: Int = 100_000) -> Int64? {
        var pending = [directory], total: Int64 = 0, count = 0
        while let current = pending.popLast() {
            guard let stream = opendir(current) else { continue }
            defer { closedir(stream) }
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name != ".", name != ".." else { continue }
                count += 1
                guard count <= maxEntries else { return nil }
                var info = stat()
                let path = current + "/" + name
                guard lstat(path, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFREG: total = total.addingReportingOverflow(Int64(info.st_size)).partialValue
                case S_IFDIR: pending.append(path)
                default: break
                }
            }
        }
        return total
    }
}

extension VolumeMount {
    /// Where host directory `path` really is (symlinks resolved, realpath): the path that is
    /// stored and checked, so a link cannot lead a mount elsewhere than it was checked for.
    package static func resolvedHostDirectory(_ path: String) throws(MSBError) -> String {
        let notDirectory = MSBError(.invalidArgument, "volume source is not a directory: \(PrintableText.escaped(path, maxScalars: 200))",
                                    hint: "give an existing host directory, or a volume name ('msb volume ls')")
        guard let resolved = realpath(path, nil) else { throw notDirectory }
        defer { free(resolved) }
        let canonical = String(cString: resolved)
        var info = stat()
        guard stat(canonical, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { throw notDirectory }
        return canonical
    }

    /// Whether `path` is `root` or lies under it (both absolute and normalised).
    package static func lies(_ path: String, inside root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root + "/")
    }

    /// `mounts` with every host path resolved and checked: a directory, and inside one of
    /// `allowedRoots` (themselves resolved) unless that is nil (a local user may name any).
    /// `shownPath` is what a refusal names: the path as given, never where a link led.
    package static func resolvingHostPaths(_ mounts: [VolumeMount], allowedRoots: [String]?) throws(MSBError) -> [VolumeMount] {
        // A link among the roots themselves is the operator's: the path as given may lie under
        // the root as written, but where it leads must lie under where the root leads.
        let roots = allowedRoots?.compactMap { try? resolvedHostDirectory($0) }
        return try mounts.map { (mount: VolumeMount) throws(MSBError) -> VolumeMount in
            guard case .hostPath(let given) = mount.source else { return mount }
            if let roots, let allowedRoots { try checkAllowed(given, roots: roots + allowedRoots) }
            let resolved = try resolvedHostDirectory(given)
            if let roots { try checkAllowed(resolved, roots: roots, shownPath: given) }
            var copy = mount
            copy.source = .hostPath(resolved)
            return copy
        }
    }

    /// 403 for a host path outside every allowed root.
    package static func checkAllowed(_ path: String, roots: [String], shownPath: String? = nil) throws(MSBError) {
        guard !roots.contains(where: { lies(path, inside: $0) }) else { return }
        throw MSBError(.accessDenied, "mounting host path \(PrintableText.escaped(shownPath ?? path, maxScalars: 200)) is not allowed on this server",
                       hint: "the server's operator can allow a directory with 'msb server start --allow-volume DIR'")
    }
}

extension SandboxConfig {
    /// Whether the sandbox mounts named volume `name`.
    package func mounts(volume name: String) -> Bool {
        (volumes ?? []).contains { $0.source == .named(name) }
    }
}
