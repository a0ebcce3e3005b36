import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBOS
import MSBVMM

/// The life of a foreground `msb server start`: listen, record the pid file, serve until
/// SIGTERM or SIGINT, then shut down gracefully.
package enum ServerRuntime {
    /// How long requests in flight may take to finish once a shutdown begins.
    package static let shutdownGraceSeconds = 30.0

    /// Serves until a signal arrives. `notice` receives the lines for people (stderr).
    package static func run(_ configuration: ServerConfiguration, notice: @escaping (String) -> Void) throws(MSBError) {
        try ServerPidFile.requireNoneRunning(configuration.paths)
        try configuration.paths.prepare()
        let authority = configuration.dev ? nil : try APIKeyAuthority.load(serverDirectory: configuration.paths.serverDirectory)
        let host = SandboxHost(paths: configuration.paths, limits: configuration.limits)
        let accessLog: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let keys = configuration.dev ? nil : APIKeyRegistry(serverDirectory: configuration.paths.serverDirectory)
        let server = HTTPServer(dispatcher: RPCDispatcher(configuration: configuration, host: host, authority: authority, keys: keys,
                                                          log: accessLog))

        // Signals become bytes on a pipe, read below once serving.
        var signalPipe: [Int32] = [-1, -1]
        _ = msb_pipe(&signalPipe, 0)
        for signo in [SIGTERM, SIGINT, SIGHUP] { _ = msb_signal_to_pipe(signo, signalPipe[1]) }

        if configuration.prepareImages { try prepareImages(configuration.paths) }
        let port = try server.start()
        let url = "\(configuration.tls == nil ? "http" : "https")://\(configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host):\(port)"
        try ServerPidFile(process: ProcessIdentity.of(pid: getpid()) ?? ProcessIdentity(pid: getpid(), startTicks: 0),
                          url: url, dev: configuration.dev).write(configuration.paths)
        defer { ServerPidFile.remove(configuration.paths) }
        announce(configuration, url: url, notice: notice)
        prewarm(configuration)

        var byte: UInt8 = 0
        while read(signalPipe[0], &byte, 1) < 0 && errno == EINTR {}
        notice("msb server: signal \(byte) received, shutting down")
        let unfinished = server.shutdown(graceSeconds: shutdownGraceSeconds)
        if unfinished > 0 { notice("msb server: \(unfinished) requests were still running after \(Int(shutdownGraceSeconds))s") }
        if !configuration.keepSandboxesOnShutdown { stopAll(host, notice: notice) }
        notice("msb server: stopped")
    }

    /// `--prepare-images`: python and node (the SDKs' default images) are built before the
    /// server listens, so no first `sandbox.start` waits for a build.
    static func prepareImages(_ paths: MSBPaths) throws(MSBError) {
        let log: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data(("msb server: " + line + "\n").utf8)) }
        let backend = LocalBackend(paths: paths)
        for name in ["python", "node"] {
            let started = MonotonicClock.now()
            log("preparing image \(name) before serving (--prepare-images)")
            try backend.ensureImage(name, ImageFetch(policy: .missing, progress: log))
            log("image \(name) ready (\(String(format: "%.1f", MonotonicClock.now() - started))s)")
        }
    }

    /// Builds the start templates of `--prewarm` images in the background (default size),
    /// through a throwaway sandbox in a namespace no client can name.
    private static func prewarm(_ configuration: ServerConfiguration) {
        guard !configuration.prewarmImages.isEmpty else { return }
        // From another thread: straight to the server's log (stderr), like its access log.
        let notice: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let paths = configuration.paths.namespaced(".prewarm")
        let images = configuration.prewarmImages
        Thread.detachNewThread {
            let backend = LocalBackend(paths: paths, namespace: ".prewarm")
            for image in images {
                let started = MonotonicClock.now()
                do throws(MSBError) {
                    try backend.warmTemplate(image: image)
                    notice("msb server: start template for \(image) ready (\(String(format: "%.1f", MonotonicClock.now() - started))s)")
                } catch {
                    notice("msb server: cannot prewarm \(image): \(error.message)")
                }
            }
        }
    }

    private static func announce(_ configuration: ServerConfiguration, url: String, notice: (String) -> Void) {
        notice("msb server \(configuration.version) listening on \(url) (pid \(getpid()))")
        notice("msb server: state in \(configuration.paths.namespacesDirectory), images in \(configuration.paths.images)")
        let limits = configuration.limits
        notice("msb server: limits: \(limits.maxRunningSandboxes) running sandboxes, \(limits.maxTotalMemoryMiB) MiB memory, \(limits.maxTotalCPUs) cpus")
        notice("msb server: per namespace: \(limits.maxCallsPerNamespace) calls, \(limits.maxSandboxesPerNamespace) running sandboxes, "
               + "\(limits.maxPullsPerNamespace) pulls, \(limits.maxSnapshotsPerNamespace) snapshots, \(limits.maxVolumesPerNamespace) volumes; \(limits.maxConnections) connections, \(limits.maxAttachSessions) attach sessions")
        if let tls = configuration.tls {
            notice("msb server: TLS with \(tls.certificatePath)")
        } else if !ServerConfiguration.isLoopback(configuration.host) {
            notice("msb server: WARNING: plain HTTP on \(configuration.host) (--insecure-http): keys and sandbox I/O are not encrypted here")
        }
        if let reason = try? AcceleratorProbe.decide(.auto).fallbackReason {
            notice("msb server: KVM is not usable here (\(reason)); sandboxes use QEMU software emulation (TCG), which is slower")
        }
        if configuration.dev {
            notice("""
                msb server: WARNING: --dev mode: API keys are NOT checked. Anyone who can connect to \(url)
                msb server: WARNING: can create, run code in and remove sandboxes in every namespace.
                """)
        } else {
            notice("msb server: API keys required; issue one with 'msb server keygen [--namespace NS] [--expire 30d]'")
        }
    }

    /// Stops every running sandbox (in parallel) so none is left without its server.
    private static func stopAll(_ host: SandboxHost, notice: (String) -> Void) {
        let running = ((try? host.allSandboxes()) ?? []).filter { $0.status.guestRuns || $0.status == .starting }
        guard !running.isEmpty else { return }
        notice("msb server: stopping \(running.count) running sandboxes (start with --keep-sandboxes to leave them running)")
        DispatchQueue.concurrentPerform(iterations: running.count) { index in
            let info = running[index]
            _ = try? host.backend(info.namespace).stop(info.name, force: false)
        }
    }
}

/// `$MSB_HOME/server/server.json`: which process serves, and where. Written atomically;
/// a stale file (its process gone) means no server.
package struct ServerPidFile: Codable, Sendable {
    package var pid: Int32
    package var startTicks: UInt64
    package var url: String
    package var dev: Bool

    package var process: ProcessIdentity { ProcessIdentity(pid: pid, startTicks: startTicks) }

    package init(process: ProcessIdentity, url: String, dev: Bool) {
        pid = process.pid
        startTicks = process.startTicks
        self.url = url
        self.dev = dev
    }

    static func path(_ paths: MSBPaths) -> String { paths.serverDirectory + "/server.json" }

    package static func read(_ paths: MSBPaths) -> ServerPidFile? {
        FileManager.default.contents(atPath: path(paths)).flatMap { try? JSONDecoder().decode(ServerPidFile.self, from: $0) }
    }

    /// The server of `paths`, if one is alive.
    package static func running(_ paths: MSBPaths) -> ServerPidFile? {
        read(paths).flatMap { $0.process.isAlive ? $0 : nil }
    }

    package static func requireNoneRunning(_ paths: MSBPaths) throws(MSBError) {
        guard let running = running(paths) else { return }
        throw MSBError(.invalidState, "an msb server is already running at \(running.url) (pid \(running.pid))",
                       hint: "stop it with 'msb server stop'")
    }

    func write(_ paths: MSBPaths) throws(MSBError) {
        try paths.prepare(including: [paths.serverDirectory])
        do {
            let data = try JSONEncoder().encode(self)
            let temporary = Self.path(paths) + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]),
                  rename(temporary, Self.path(paths)) == 0 else {
                throw MSBError(.stateStore, "cannot write \(Self.path(paths))")
            }
        } catch {
            throw MSBError.wrap(error, .stateStore, "cannot write the server's pid file")
        }
    }

    static func remove(_ paths: MSBPaths) { unlink(path(paths)) }
}
