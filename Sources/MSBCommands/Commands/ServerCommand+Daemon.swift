import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBHTTP
import MSBOS
import MSBServer
import NIOHTTP1

/// `msb server start --detach`: the same server as a background process in its own
/// session, with a minimal environment and its output in `$MSB_HOME/server/server.log`.
enum ServerDaemon {
    static func detach(_ configuration: ServerConfiguration) throws(MSBError) -> Int32 {
        let paths = configuration.paths
        try ServerPidFile.requireNoneRunning(paths)
        try paths.prepare(including: [paths.serverDirectory])
        let logPath = paths.serverDirectory + "/server.log"
        let logFd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard logFd >= 0 else { throw MSBError(.stateStore, "cannot open \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(logFd) }
        let nullFd = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(nullFd) }

        let executable = SupervisorLauncher.currentExecutable()
        var spec = SpawnSpec(executable, arguments: [executable, "server", "start"] + arguments(configuration),
                             environment: paths.childEnvironment(passing: ["LANG", "MSB_ACCEL"]))
        spec.workingDirectory = "/"
        spec.standardInput = nullFd
        spec.standardOutput = logFd
        spec.standardError = logFd
        let server: ChildProcess
        do { server = try ChildProcess.spawn(spec) } catch {
            throw MSBError(.internalError, "cannot start the server: \(error.reason)")
        }
        let pid = server.pid

        // Ready when its pid file names it and it answers the health check.
        // --prepare-images builds images before the server listens: minutes, not seconds.
        let readySeconds = configuration.prepareImages ? 1800.0 : 30
        if configuration.prepareImages { CommandContext.writeOut("msb server: preparing the python and node images first; log: \(logPath)\n") }
        let deadline = Date().addingTimeInterval(readySeconds)
        while Date() < deadline {
            if server.poll() != nil {
                throw MSBError(.internalError, "the server exited at start", hint: "see \(logPath)")
            }
            if let file = ServerPidFile.read(paths), file.pid == pid, isHealthy(url: file.url) {
                CommandContext.writeOut("msb server running at \(file.url) (pid \(pid)); log: \(logPath)\n")
                return 0
            }
            usleep(50_000)
        }
        kill(pid, SIGTERM)
        throw MSBError(.timeout, "the server did not answer within \(Int(readySeconds))s", hint: "see \(logPath)")
    }

    /// The command line that recreates `configuration` in the child.
    private static func arguments(_ c: ServerConfiguration) -> [String] {
        var words = ["--host", c.host, "--port", String(c.port),
                     "--max-sandboxes", String(c.limits.maxRunningSandboxes),
                     "--max-memory", String(c.limits.maxTotalMemoryMiB), "--max-cpus", String(c.limits.maxTotalCPUs)]
        if c.dev { words.append("--dev") }
        for dir in c.volumeAllowList { words += ["--allow-volume", dir] }
        for rule in c.portAllowList { words += ["--allow-port", rule.description] }
        words += ["--default-net", c.defaultNetwork ? "on" : "off"]
        for rule in c.netAllowList { words += ["--namespace-net-allow", rule.description] }
        if c.remoteAllowHost { words.append("--remote-allow-host") }
        if c.remoteNetUnrestricted { words.append("--remote-net-unrestricted") }
        if c.allowInsecureRegistries { words.append("--allow-insecure-registries") }
        if c.keepSandboxesOnShutdown { words.append("--keep-sandboxes") }
        for image in c.prewarmImages { words += ["--prewarm", image] }
        if c.prepareImages { words.append("--prepare-images") }
        if let tls = c.tls { words += ["--tls-cert", tls.certificatePath, "--tls-key", tls.keyPath] }
        if c.insecureHTTP { words.append("--insecure-http") }
        let l = c.limits
        words += ["--max-connections", String(l.maxConnections), "--max-attach-sessions", String(l.maxAttachSessions),
                  "--attach-idle-timeout", "\(l.attachIdleTimeoutSeconds)", "--request-timeout", "\(l.requestDeadlineSeconds)",
                  "--max-calls-per-namespace", String(l.maxCallsPerNamespace),
                  "--max-sandboxes-per-namespace", String(l.maxSandboxesPerNamespace),
                  "--max-pulls-per-namespace", String(l.maxPullsPerNamespace),
                  "--max-snapshots-per-namespace", String(l.maxSnapshotsPerNamespace),
                  "--max-volumes-per-namespace", String(l.maxVolumesPerNamespace)]
        return words
    }

    static func isHealthy(url: String) -> Bool {
        guard let endpoint = try? RemoteEndpoint(url: url, apiKey: nil, namespace: RemoteWire.defaultNamespace),
              let response = try? RemoteBackend.request(endpoint, .GET, path: RemoteWire.healthPath, timeoutSeconds: 5,
                                                        trust: .unverifiedLocalHealthCheck) else { return false }
        return response.status == 200
    }
}
