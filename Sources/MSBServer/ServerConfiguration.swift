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
    /// `--allow-volume`: host directories (and their subtrees) that `config.volumes` may
    /// name; checked where links lead too. None by default.
    package var volumeAllowList: [String] = []
    /// `--allow-port`: host ports (and the addresses) remote clients may publish; none by default.
    package var portAllowList: [PortAllowance] = []
    /// `--default-net on|off`: the network of a sandbox whose request says nothing of one.
    package var defaultNetwork = true
    /// `--namespace-net-allow`: the ranges a remote client's `net_allow` rules must lie inside.
    package var netAllowList: [EgressRule] = []
    /// `--remote-allow-host`: remote clients may let sandboxes reach this host's loopback.
    package var remoteAllowHost = false
    /// `--remote-net-unrestricted`: remote clients may turn a sandbox's egress filter off.
    package var remoteNetUnrestricted = false
    /// Let `image.pull` use plain HTTP registries (`insecure`).
    package var allowInsecureRegistries = false
    /// Leave running sandboxes running when the server shuts down (they are stopped otherwise).
    package var keepSandboxesOnShutdown = false
    /// `--prepare-images`: build python and node (if missing) before serving.
    package var prepareImages = false
    /// Images whose start templates are built when the server starts (`--prewarm`).
    package var prewarmImages: [String] = []
    /// PEM certificate chain and private key: the server speaks HTTPS only.
    package var tls: TLSFiles?
    /// Plain HTTP on an address other than loopback (behind a TLS-terminating proxy).
    package var insecureHTTP = false
    /// Reported by `server.info` and the health check.
    package var version = "0"

    package init(paths: MSBPaths) { self.paths = paths }

    package struct TLSFiles: Sendable, Equatable {
        package var certificatePath: String
        package var keyPath: String

        package init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }
    }

    /// 127.0.0.0/8, ::1 and localhost: traffic that never leaves the host.
    package static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Plain HTTP carries API keys and sandbox I/O in clear text, so it is refused on any
    /// address but loopback unless the operator says so.
    package func checkTransport() throws(MSBError) {
        guard tls == nil, !insecureHTTP, !Self.isLoopback(host) else { return }
        throw MSBError(.invalidArgument,
                       "refusing to serve plain HTTP on \(host): API keys and sandbox I/O would cross the network unencrypted",
                       hint: "give --tls-cert FILE --tls-key FILE, or --insecure-http if a TLS-terminating proxy stands in front")
    }
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
    /// One `sandbox.wait` call blocks at most this long, seconds (the client asks again):
    /// short, so a waiting client holds a worker briefly and never delays a shutdown long.
    package var maxWaitSeconds = 10.0
    /// What `sandbox.command.run` / `repl.run` keep of each stream; the rest is cut with a note.
    package var maxOutputBytes = 16 << 20
    /// A connection that sends nothing for this long between requests is closed, seconds.
    package var idleTimeoutSeconds = 60.0
    /// A request's head and body must arrive within this long of its first byte, seconds
    /// (a client trickling bytes cannot hold a connection).
    package var requestDeadlineSeconds = 30.0
    /// Open HTTP connections (attach sessions not counted). At the cap a new connection
    /// closes the one idle longest; when every one runs a request, it is refused (503).
    package var maxConnections = 512
    /// Upgraded attach streams (remote exec, shell, repl, cp) at once, server-wide.
    package var maxAttachSessions = 64
    /// An attach stream with no traffic either way for this long is closed, seconds.
    package var attachIdleTimeoutSeconds = 900.0
    /// JSON-RPC calls running at once for one namespace (the server has 64 workers).
    package var maxCallsPerNamespace = 16
    /// Sandboxes running (or booting) at once in one namespace.
    package var maxSandboxesPerNamespace = 16
    /// `image.pull` calls running at once for one namespace.
    package var maxPullsPerNamespace = 2
    /// Snapshots one namespace keeps (each holds a sandbox's memory and disk on the host).
    package var maxSnapshotsPerNamespace = 8
    /// Named volumes one namespace keeps (their data is not limited here: the guests write it).
    package var maxVolumesPerNamespace = 32
    /// What `sandbox.command.run` / `repl.run` keep of each stream, in lines.
    package var maxOutputLines = 100_000

    package init() {}

    /// Three quarters of the host's memory.
    static func defaultMemoryMiB() -> Int {
        Int(ProcessInfo.processInfo.physicalMemory / (1 << 20)) * 3 / 4
    }
}
