import MSBCore

/// `--depends-on` / `depends_on`: sandboxes of the same namespace that must run before a
/// sandbox starts. Each start (create, `msb start`, `sandbox.start`) first starts those
/// that are not running, dependencies of dependencies first; an unknown name or a cycle is
/// refused before anything starts.
extension SandboxBackend {
    /// The sandboxes `config` needs started, in the order to start them (each after its own
    /// dependencies); those already running (or starting, or paused) are left out.
    package func dependenciesToStart(of config: SandboxConfig) throws(MSBError) -> [SandboxInfo] {
        var order: [SandboxInfo] = []
        var done: Set<String> = []
        try visit(config.name, config.dependsOn ?? [], path: [config.name], order: &order, done: &done)
        return order
    }

    private func visit(_ name: String, _ dependencies: [String], path: [String], order: inout [SandboxInfo],
                       done: inout Set<String>) throws(MSBError) {
        for dependency in dependencies {
            if let start = path.firstIndex(of: dependency) {
                let cycle = (path[start...] + [dependency]).joined(separator: " → ")
                throw MSBError(.invalidArgument, "dependency cycle: \(cycle)",
                               hint: "a sandbox cannot depend, directly or through others, on itself")
            }
            guard !done.contains(dependency) else { continue }
            let info: SandboxInfo
            do throws(MSBError) {
                info = try inspect(dependency)
            } catch where error.code == .notFound {
                throw MSBError(.notFound, "sandbox \(name) depends on \(dependency), which does not exist",
                               hint: "create it first, or drop it from --depends-on / depends_on")
            }
            try visit(dependency, info.config.dependsOn ?? [], path: path + [dependency], order: &order, done: &done)
            done.insert(dependency)
            if ![.running, .starting, .paused].contains(info.status) { order.append(info) }
        }
    }

    /// Starts what `config` depends on (see `dependenciesToStart`); `start` boots one.
    package func startDependencies(of config: SandboxConfig,
                                   start: (SandboxInfo) throws(MSBError) -> Void) throws(MSBError) {
        for dependency in try dependenciesToStart(of: config) { try start(dependency) }
    }
}
