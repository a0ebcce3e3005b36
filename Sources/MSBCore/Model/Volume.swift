import Foundation

/// A directory shared into a sandbox (`-v SOURCE:GUESTPATH[:ro]`): a host directory or a
/// named volume (`msb volume create`), served by a virtiofsd of its own and mounted by the
/// agent at `guestPath` before the first command.
public struct VolumeMount: Codable, Equatable, Sendable {
    public enum Source: Codable, Equatable, Sendable {
        /// An absolute, normalised host path (a directory when the sandbox starts).
        case hostPath(String)
        /// A named volume in msb's state directory.
        case named(String)
    }

    public var source: Source
    /// Absolute, normalised, not `/` and not under /proc, /sys or /dev.
    public var guestPath: String
    /// Enforced by the host: the guest cannot write whatever it does with its mount.
    public var readOnly: Bool

    package init(source: Source, guestPath: String, readOnly: Bool) {
        self.source = source
        self.guestPath = guestPath
        self.readOnly = readOnly
    }

    /// The most volumes one sandbox may have (each is a virtiofsd and a QEMU device).
    package static let maximumPerSandbox = 8
    /// Guest paths a volume may not cover: the guest's own kernel interfaces.
    package static let reservedGuestPaths = ["/proc", "/sys", "/dev"]

    /// `SOURCE:GUESTPATH[:ro|:rw]`: SOURCE is an absolute host path or a volume name.
    package static func parse(_ text: String) throws(MSBError) -> VolumeMount {
        func bad(_ why: String) -> MSBError {
            MSBError(.invalidArgument, "invalid volume '\(PrintableText.escaped(text, maxScalars: 200))': \(why)",
                     hint: "use HOSTDIR:GUESTDIR[:ro] (an absolute host directory) or NAME:GUESTDIR[:ro] (msb volume ls)")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { throw bad("control characters") }
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var readOnly = false
        if parts.count == 3 {
            switch parts.removeLast() {
            case "ro": readOnly = true
            case "rw": readOnly = false
            default: throw bad("the mode must be ro or rw")
            }
        }
        guard parts.count == 2 else { throw bad("expected SOURCE:GUESTDIR[:ro]") }
        let source: Source
        if parts[0].hasPrefix("/") {
            guard let path = normalisedAbsolutePath(parts[0]) else { throw bad("the host path must be absolute, without '.' or '..'") }
            source = .hostPath(path)
        } else {
            guard isValidVolumeName(parts[0]) else {
                throw bad("'\(PrintableText.escaped(parts[0], maxScalars: 80))' is neither an absolute host path nor a volume name")
            }
            source = .named(parts[0])
        }
        guard let guestPath = normalisedAbsolutePath(parts[1]), guestPath != "/" else {
            throw bad("the guest path must be absolute, not '/', without '.' or '..'")
        }
        for reserved in reservedGuestPaths where guestPath == reserved || guestPath.hasPrefix(reserved + "/") {
            throw bad("\(reserved) is the guest kernel's")
        }
        return VolumeMount(source: source, guestPath: guestPath, readOnly: readOnly)
    }

    /// How `parse` reads it back.
    package var specification: String {
        let sourceText: String
        switch source {
        case .hostPath(let path): sourceText = path
        case .named(let name): sourceText = name
        }
        return "\(sourceText):\(guestPath)" + (readOnly ? ":ro" : "")
    }

    /// The checks a set of mounts must pass together: the count, and no guest path twice
    /// or inside another (the later mount would hide part of the earlier).
    package static func check(_ mounts: [VolumeMount]) throws(MSBError) {
        guard mounts.count <= maximumPerSandbox else {
            throw MSBError(.invalidArgument, "too many volumes: \(mounts.count) (at most \(maximumPerSandbox))")
        }
        for (index, mount) in mounts.enumerated() {
            for other in mounts[(index + 1)...] {
                let (a, b) = (mount.guestPath, other.guestPath)
                if a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/") {
                    throw MSBError(.invalidArgument, "volumes overlap in the guest: \(a) and \(b)")
                }
            }
        }
    }

    /// Volume names: like sandbox names, 1–63 of [A-Za-z0-9_.-], starting alphanumeric.
    package static func isValidVolumeName(_ name: String) -> Bool {
        func alphanumeric(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
        }
        let scalars = Array(name.unicodeScalars)
        guard (1...63).contains(scalars.count), let first = scalars.first, alphanumeric(first) else { return false }
        return scalars.allSatisfy { alphanumeric($0) || "_.-".unicodeScalars.contains($0) }
    }

    /// `path` without repeated or trailing slashes; nil unless absolute and free of `.`,
    /// `..` and NUL, and at most 4096 bytes.
    package static func normalisedAbsolutePath(_ path: String) -> String? {
        guard path.hasPrefix("/"), path.utf8.count <= 4096, !path.utf8.contains(0) else { return nil }
        let components = path.split(separator: "/")
        guard !components.contains(where: { $0 == "." || $0 == ".." }) else { return nil }
        return "/" + components.joined(separator: "/")
    }
}
