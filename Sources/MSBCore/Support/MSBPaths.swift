import Foundation

/// Where msb keeps its state. `MSB_HOME` (default `~/.msb`) holds the database and one
/// directory per sandbox; `MSB_ARTIFACTS` (default `$MSB_HOME/guest`) holds the guest
/// kernel and initramfs built by the set-up.
public struct MSBPaths: Sendable {
    public let home: String
    public let artifacts: String

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let home: String
        if let explicit = environment["MSB_HOME"], !explicit.isEmpty {
            home = explicit
        } else {
            home = (environment["HOME"] ?? NSHomeDirectory()) + "/.msb"
        }
        self.home = MSBPaths.absolute(home)
        self.artifacts = MSBPaths.absolute(environment["MSB_ARTIFACTS"].flatMap { $0.isEmpty ? nil : $0 } ?? self.home + "/guest")
    }

    public var database: String { home + "/state.db" }
    public var sandboxesDirectory: String { home + "/sandboxes" }
    public func sandboxDirectory(_ name: String) -> String { sandboxesDirectory + "/" + name }
    public func controlSocket(_ name: String) -> String { sandboxDirectory(name) + "/ctl.sock" }
    public func agentSocket(_ name: String) -> String { sandboxDirectory(name) + "/agent.sock" }
    public func qmpSocket(_ name: String) -> String { sandboxDirectory(name) + "/qmp.sock" }
    public func consoleLog(_ name: String) -> String { sandboxDirectory(name) + "/console.log" }
    public func supervisorLog(_ name: String) -> String { sandboxDirectory(name) + "/supervisor.log" }
    /// The sandbox's writable layer over its image's root disk (qcow2), when it has one.
    public func rootDisk(_ name: String) -> String { sandboxDirectory(name) + "/disk.qcow2" }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }

    /// Creates the state directories with owner-only permissions: they are the trust boundary.
    package func prepare() throws(MSBError) {
        for dir in [home, sandboxesDirectory] {
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
