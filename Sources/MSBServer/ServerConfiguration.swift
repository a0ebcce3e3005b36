import Foundation
import MSBClient
import MSBCore

/// How `msb server start` was asked to run: where it listens, whether it checks keys, and
/// the limits it holds every client to.
package struct ServerConfiguration: Sendable {
    package var host = "127.0.0.1"
    package var port = 5555
    /// No API keys: every request is accepted, in every namespace. Said loudly at start.
    package var dev = false
    package var paths: MSBPaths
    package var limits = ServerLimits()
    /// Host paths (and their subtrees) that `config.volumes` may name.
    package var volumeAllowList: [String] = []
    /// Host ports below 1024 that `config.ports` may publish.
    package var privilegedPortAllowList: Set<Int> = []
    /// Let `image.pull` use plain HTTP registries (`insecure`).
    package var allowInsecureRegistries = false
    /// Leave running sandboxes running when the server shuts down (they are stopped otherwise).
    package var keepSandboxesOnShutdown = false
    /// Reported by `server.info` and the health check.
    package var version = "0"

    package init(paths: MSBPaths) { self.paths = paths }
}

package struct ServerLimits: Sendable, Equatable {
    /// Sandboxes running (or booting) at once, across namespaces.
    package var maxRunningSandboxes = 32
    /// Memory of the running sandboxes together, MiB.
    package var maxTotalMemoryMiB = ServerLimits.defaultMemoryMiB()
    /// Virtual CPUs of the running sandboxes together.
    package var maxTotalCPUs = ProcessInfo.processInfo.activeProcessorCount * 4
    /// Largest request body accepted (HTTP 413 above it).
    package var maxBodyBytes = 8 << 20
    /// Commands and code without a `timeout` get this one, seconds.
    package var defaultExecTimeoutSeconds = 300.0
    /// No request may ask for a longer `timeout`, seconds.
    package var maxExecTimeoutSeconds = 3600.0
    /// What `sandbox.command.run` / `repl.run` keep of each stream; the rest is cut with a note.
    package var maxOutputBytes = 16 << 20
    /// A connection that sends nothing for this long between requests is closed, seconds.
    package var idleTimeoutSeconds = 60.0

    package init() {}

    /// Three quarters of the host's memory.
    static func defaultMemoryMiB() -> Int {
        Int(ProcessInfo.processInfo.physicalMemory / (1 << 20)) * 3 / 4
    }
}
