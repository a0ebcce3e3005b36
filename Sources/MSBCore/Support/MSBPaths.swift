import Foundation
import MSBOS

/// Where msb keeps its state. `MSB_HOME` (default `~/.msb`) holds the database and one
/// directory per sandbox; `MSB_ARTIFACTS` (default `$MSB_HOME/guest`) holds the guest
/// kernel and initramfs built by the set-up; `MSB_IMAGES` (default `$MSB_HOME/images`)
/// holds images. An `msb server` gives each namespace a home of its own (`namespaced`)
/// that shares the artifacts and images of the server's home.
public struct MSBPaths: Sendable {
    public private(set) var home: String
    public let artifacts: String
    public let images: String
    /// Saved guests that sandboxes start from (`MSB_TEMPLATES`, default `$MSB_HOME/templates`);
    /// shared by a server's namespaces like the images.
    public let templates: String

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let home: String
        if let explicit = environment["MSB_HOME"], !explicit.isEmpty {
            home = explicit
        } else {
            home = (environment["HOME"] ?? NSHomeDirectory()) + "/.msb"
        }
        self.home = MSBPaths.absolute(home)
        self.artifacts = MSBPaths.absolute(environment["MSB_ARTIFACTS"].flatMap { $0.isEmpty ? nil : $0 } ?? self.home + "/guest")
        self.images = MSBPaths.absolute(environment["MSB_IMAGES"].flatMap { $0.isEmpty ? nil : $0 } ?? self.home + "/images")
        self.templates = MSBPaths.absolute(environment["MSB_TEMPLATES"].flatMap { $0.isEmpty ? nil : $0 } ?? self.home + "/templates")
    }

    /// The home of one server namespace, `directory` under `namespacesDirectory` (the server
    /// maps each namespace to a directory name): its own database and sandboxes, shared
    /// images and guest.
    package func namespaced(_ directory: String) -> MSBPaths {
        var paths = self
        paths.home = namespacesDirectory + "/" + directory
        return paths
    }

    /// Server state: the signing secret, pid file and log of `msb server`.
    package var serverDirectory: String { home + "/server" }
    package var namespacesDirectory: String { home + "/namespaces" }
    /// The environment a child msb needs to see these same paths.
    /// The read-only root disk of the stored image with this content digest (64 hex digits):
    /// stored images never change, so a sandbox's overlay names exactly what it was made from.
    package func storedImageRootDisk(digestHex: String) -> String { images + "/.store/" + digestHex + "/rootfs.ext4" }

    package var environment: [String] {
        ["MSB_HOME=\(home)", "MSB_ARTIFACTS=\(artifacts)", "MSB_IMAGES=\(images)", "MSB_TEMPLATES=\(templates)"]
    }

    /// The whole, minimal environment of a child msb (supervisor, detached server): the
    /// default PATH, these paths, and the named variables of ours that are set.
    package func childEnvironment(passing names: [String]) -> [String] {
        let ours = ProcessInfo.processInfo.environment
        return ["PATH=\(SpawnSpec.defaultSearchPath)"] + environment + names.compactMap { name in ours[name].map { "\(name)=\($0)" } }
    }

    public var database: String { home + "/state.db" }
    /// Named snapshots (`msb snapshot create`): per home, so per server namespace.
    public var snapshots: String { home + "/snapshots" }
    public var sandboxesDirectory: String { home + "/sandboxes" }
    public func sandboxDirectory(_ name: String) -> String { sandboxesDirectory + "/" + name }
    public func controlSocket(_ name: String) -> String { sandboxDirectory(name) + "/ctl.sock" }
    public func consoleLog(_ name: String) -> String { sandboxDirectory(name) + "/console.log" }
    public func supervisorLog(_ name: String) -> String { sandboxDirectory(name) + "/supervisor.log" }
    /// The output of the sandbox's start command (`exec`), read by `msb logs`; the older
    /// half lives in `exec.log.1` once it grew past its cap.
    public func startCommandLog(_ name: String) -> String { sandboxDirectory(name) + "/exec.log" }
    /// Named volumes (`msb volume`): per home, so per server namespace; each is
    /// `volumes/NAME/` (0700) around the `data` directory the guest sees.
    package var volumesDirectory: String { home + "/volumes" }
    /// The directory a named volume shares into the guest; `storedName` is the volume's
    /// name, already checked by `VolumeMount.isValidVolumeName`.
    package func volumeDataDirectory(_ storedName: String) -> String { home + "/volumes/" + storedName + "/data" }
    /// The sandbox's writable layer over its image's root disk (qcow2), when it has one.
    public func rootDisk(_ name: String) -> String { sandboxDirectory(name) + "/disk.qcow2" }
    /// Unix socket paths are limited to 107 bytes; the longest one a sandbox binds must fit.
    package func socketPathsFit(_ name: String) -> Bool { controlSocket(name).utf8.count <= 107 }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }

    /// Creates the state directories (and `extra` ones) with owner-only permissions: they
    /// are the trust boundary.
    package func prepare(including extra: [String] = []) throws(MSBError) {
        for dir in [home, sandboxesDirectory] + extra {
            do {
                try FileManager.default.createDirectory(
                    atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                chmod(dir, 0o700)
            } catch {
                throw MSBError(.stateStore, "cannot create state directory \(dir)", cause: SendableErrorDescription("\(error)"))
            }
        }
    }
}
