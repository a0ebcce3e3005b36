import Foundation
import MSBCore
import MSBOS

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
        let work = try store.makeWorkDirectory("build")
        do {
            try fm.createDirectory(atPath: work + "/rootfs", withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
        } catch {
            try? fm.removeItem(atPath: work)
            throw MSBError(.stateStore, "cannot create the image's work directory: \(error)")
        }
        defer { try? fm.removeItem(atPath: work) }

        let started = Date()
        progress("installing Debian \(Self.suite) minbase + \(recipe.packages.joined(separator: " ")) (mmdebstrap)")
        try HostCommand.run(["/usr/bin/mmdebstrap", "--quiet", "--variant=minbase", "--include=" + recipe.packages.joined(separator: ","),
                 "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
                 "--dpkgopt=path-exclude=/usr/share/locale/*",
                 Self.suite, work + "/rootfs"], what: "mmdebstrap")
        try prepareRoot(work + "/rootfs", name: name)

        let info = try RootDiskWriter(store: store, progress: progress).install(
            name: name, rootfs: work + "/rootfs", work: work, environment: recipe.environment, workingDirectory: "/root",
            command: [], digest: nil, source: "mmdebstrap \(Self.suite) minbase + \(recipe.packages.joined(separator: " "))")
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
}
