import MSBCore
import MSBImages
import MSBVMM

/// Changing a stopped sandbox's saved config (`sandbox.start` with a changed config).
extension LocalBackend {
    /// The environment a sandbox gets before its own `-e`: its snapshot's, else its image's.
    package func baseEnvironment(of config: SandboxConfig) -> [String] {
        if let snapshot = config.snapshot {
            return (try? SnapshotStore(directory: paths.snapshots).record(snapshot).config.environment) ?? []
        }
        return (try? ImageStore(paths: paths).get(config.image))?.environment ?? []
    }

    /// Changes the saved config of a sandbox that is not running (`sandbox.start` with a
    /// changed config), under the database's write lock so no start races it.
    package func reconfigure(_ name: String, _ change: (inout SandboxConfig) throws(MSBError) -> Void) throws(MSBError) -> SandboxInfo {
        _ = try existing(name)
        let record = try store().update(name) { (record: inout SandboxRecord) throws(MSBError) in
            record = record.reconciled()
            guard !record.status.expectsSupervisor else {
                throw MSBError(.invalidState, "cannot change the config of sandbox \(name): it is \(record.status.rawValue)",
                               hint: "stop it first with 'msb stop \(name)'")
            }
            try change(&record.config)
        }
        return described(record)
    }
}
