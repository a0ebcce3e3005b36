import Foundation

/// Builds the offline images from Debian packages: mmdebstrap (minbase plus the
/// language runtime) into a directory, then `mkfs.ext4 -d` into a read-only root disk.
/// Needs no registry and no root or loop mounts.
package struct ImageBuilder {
    package struct Recipe: Sendable {
        let packages: [String]
        let environment: [String]
    }

    package static let recipes: [String: Recipe] = [
        "python": Recipe(packages: ["python3"], environment: ["PYTHONUNBUFFERED=1"]),
        "node": Recipe(packages: ["nodejs"], environment: []),
    ]
    static let suite = "bookworm"
    /// Room for sandboxes to write on top of the image; the file is sparse.
    static let spareMiB = 2048

    let store: ImageStore
    let progress: (String) -> Void

    package init(store: ImageStore, progress: @escaping (String) -> Void) {
        self.store = store
        self.progress = progress
    }

    /// Builds `name` unless it exists (or `force`). Returns the image.
    package func build(_ name: String, force: Bool) throws(MSBError) -> ImageInfo {
        guard let recipe = Self.recipes[name] else {
            throw MSBError(.invalidArgument, "no recipe for image '\(name)'", hint: "buildable images: node, python")
        }
        if !force, let existing = try? store.get(name), existing.kind == "disk" {
            progress("image \(name) is already built (use --force to rebuild)")
            return existing
        }
        let fm = FileManager.default
        let work = store.directory + "/.build-\(name)-\(getpid())"
        try? fm.removeItem(atPath: work)
        do {
            try fm.createDirectory(atPath: work + "/rootfs", withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
        } catch {
            throw MSBError(.stateStore, "cannot create \(work): \(error)")
        }
        defer { try? fm.removeItem(atPath: work) }

        let started = Date()
        progress("[1/3] installing Debian \(Self.suite) minbase + \(recipe.packages.joined(separator: " ")) (mmdebstrap)")
        try run(["/usr/bin/mmdebstrap", "--quiet", "--variant=minbase", "--include=" + recipe.packages.joined(separator: ","),
                 "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
                 "--dpkgopt=path-exclude=/usr/share/locale/*",
                 Self.suite, work + "/rootfs"], what: "mmdebstrap")
        try prepareRoot(work + "/rootfs", name: name)

        progress("[2/3] writing the root disk (mkfs.ext4 -d)")
        let usedMiB = try diskUsageMiB(work + "/rootfs")
        let sizeMiB = usedMiB + usedMiB / 4 + Self.spareMiB
        try run(["/usr/sbin/mkfs.ext4", "-q", "-F", "-L", "msbroot", "-E", "root_owner=0:0", "-d", work + "/rootfs",
                 work + "/rootfs.ext4", "\(sizeMiB)M"], what: "mkfs.ext4")

        progress("[3/3] recording the image")
        let digest = try sha256(work + "/rootfs.ext4")
        let info = ImageInfo(
            name: name, kind: "disk", digest: "sha256:" + digest, sizeBytes: Int64(usedMiB) * 1024 * 1024,
            createdAt: Date(), environment: recipe.environment, workingDirectory: "/root",
            source: "mmdebstrap \(Self.suite) minbase + \(recipe.packages.joined(separator: " "))")
        try store.save(info, in: work)
        try? fm.removeItem(atPath: work + "/rootfs")
        // Swap in atomically: sandboxes of an older build keep their own open base file.
        let target = store.imageDirectory(name)
        let old = store.directory + "/.old-\(name)-\(getpid())"
        if fm.fileExists(atPath: target) { try? fm.moveItem(atPath: target, toPath: old) }
        do {
            try fm.moveItem(atPath: work, toPath: target)
        } catch {
            throw MSBError(.stateStore, "cannot install image \(name): \(error)")
        }
        try? fm.removeItem(atPath: old)
        progress("built image \(name) in \(Int(Date().timeIntervalSince(started)))s")
        return info
    }

    /// What every msb root needs: a hostname file and a root home.
    private func prepareRoot(_ root: String, name: String) throws(MSBError) {
        let fm = FileManager.default
        try? fm.createDirectory(atPath: root + "/root", withIntermediateDirectories: true)
        try? "msb\n".write(toFile: root + "/etc/hostname", atomically: true, encoding: .utf8)
        try? "127.0.0.1 localhost\n::1 localhost\n".write(toFile: root + "/etc/hosts", atomically: true, encoding: .utf8)
        try? fm.removeItem(atPath: root + "/var/cache/apt/archives")
        try? fm.createDirectory(atPath: root + "/var/cache/apt/archives/partial", withIntermediateDirectories: true)
        try? fm.removeItem(atPath: root + "/var/lib/apt/lists")
        try? fm.createDirectory(atPath: root + "/var/lib/apt/lists/partial", withIntermediateDirectories: true)
    }

    private func diskUsageMiB(_ path: String) throws(MSBError) -> Int {
        let output = try run(["/usr/bin/du", "-sm", path], what: "du")
        guard let first = output.split(separator: "\t").first, let mib = Int(first) else {
            throw MSBError(.internalError, "cannot measure \(path)")
        }
        return mib
    }

    private func sha256(_ path: String) throws(MSBError) -> String {
        let output = try run(["/usr/bin/sha256sum", path], what: "sha256sum")
        return String(output.prefix(64))
    }

    @discardableResult
    private func run(_ argv: [String], what: String) throws(MSBError) -> String {
        guard FileManager.default.isExecutableFile(atPath: argv[0]) else {
            throw MSBError(.notFound, "\(argv[0]) is not installed", hint: "run scripts/setup.sh (it installs mmdebstrap and e2fsprogs)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch {
            throw MSBError(.internalError, "cannot run \(what): \(error)")
        }
        let errBox = PipeDrain(err)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let tail = errBox.text.split(separator: "\n").suffix(5).joined(separator: "; ")
            throw MSBError(.internalError, "\(what) failed with status \(process.terminationStatus): \(tail)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Reads a pipe to its end on another thread, so neither pipe of a child fills up.
final class PipeDrain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe) {
        Thread.detachNewThread { [self] in
            data = pipe.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
    }

    var text: String {
        done.wait()
        done.signal()
        return String(decoding: data, as: UTF8.self)
    }
}
