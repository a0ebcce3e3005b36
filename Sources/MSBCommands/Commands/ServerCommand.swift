import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBServer

struct ServerCommand: Subcommand {
    static let spec = CommandSpec(
        name: "server", summary: "Serve sandboxes over HTTP to remote msb clients and the sandbox SDKs",
        usage: "start|stop|status|keygen|keys ls|keys revoke ID [OPTIONS]",
        options: [
            OptionSpec(long: "host", short: nil, valueName: "ADDR", help: "start: address to listen on (default: 127.0.0.1)"),
            OptionSpec(long: "port", short: "p", valueName: "PORT", help: "start: port to listen on (default: 5555)"),
            OptionSpec(long: "tls-cert", short: nil, valueName: "FILE", help: "start: serve HTTPS with this PEM certificate chain"),
            OptionSpec(long: "tls-key", short: nil, valueName: "FILE", help: "start: the PEM private key of --tls-cert"),
            OptionSpec(long: "insecure-http", short: nil, valueName: nil,
                       help: "start: allow plain HTTP on an address other than loopback (behind a TLS proxy)"),
            OptionSpec(long: "detach", short: "d", valueName: nil, help: "start: run in the background (log in $MSB_HOME/server/server.log)"),
            OptionSpec(long: "dev", short: nil, valueName: nil, help: "start: accept requests without API keys (loopback only)"),
            OptionSpec(long: "max-sandboxes", short: nil, valueName: "N", help: "start: sandboxes running at once (default: 32)"),
            OptionSpec(long: "max-memory", short: nil, valueName: "SIZE", help: "start: memory of all running sandboxes (default: 3/4 of RAM)"),
            OptionSpec(long: "max-cpus", short: nil, valueName: "N", help: "start: vCPUs of all running sandboxes (default: 4 per core)"),
            OptionSpec(long: "allow-volume", short: nil, valueName: "DIR", help: "start: host directory clients may name in volumes (repeatable)", repeatable: true),
            OptionSpec(long: "allow-port", short: nil, valueName: "[ADDR:]PORT[-PORT]",
                       help: "start: host ports clients may publish, on 127.0.0.1 or on ADDR if given (repeatable; default: none)", repeatable: true),
            OptionSpec(long: "default-net", short: nil, valueName: "on|off",
                       help: "start: network of a sandbox whose request does not say (default: on)", completion: .values(["on", "off"])),
            OptionSpec(long: "namespace-net-allow", short: nil, valueName: "CIDR[:PORT]",
                       help: "start: range inside which a client's --net-allow may open destinations (repeatable; default: none)", repeatable: true),
            OptionSpec(long: "remote-allow-host", short: nil, valueName: nil,
                       help: "start: let clients give sandboxes --allow-host (this host's loopback services)"),
            OptionSpec(long: "remote-net-unrestricted", short: nil, valueName: nil,
                       help: "start: let clients turn a sandbox's egress filter off (--net-unrestricted)"),
            OptionSpec(long: "allow-insecure-registries", short: nil, valueName: nil, help: "start: let clients pull from plain-HTTP registries"),
            OptionSpec(long: "keep-sandboxes", short: nil, valueName: nil, help: "start: leave sandboxes running when the server stops"),
            OptionSpec(long: "prepare-images", short: nil, valueName: nil,
                       help: "start: build the python and node images (if missing) before serving"),
            OptionSpec(long: "prewarm", short: nil, valueName: "IMAGE", help: "start: build the start template of this image at once (repeatable)",
                       repeatable: true, completion: .image),
            OptionSpec(long: "max-connections", short: nil, valueName: "N", help: "start: open HTTP connections (default: 512)"),
            OptionSpec(long: "max-attach-sessions", short: nil, valueName: "N",
                       help: "start: remote exec, shell, repl and cp streams at once (default: 64)"),
            OptionSpec(long: "attach-idle-timeout", short: nil, valueName: "DURATION",
                       help: "start: close a stream with no traffic for this long (default: 15m)"),
            OptionSpec(long: "request-timeout", short: nil, valueName: "DURATION",
                       help: "start: a request must arrive whole within this long of its first byte (default: 30s)"),
            OptionSpec(long: "max-calls-per-namespace", short: nil, valueName: "N", help: "start: calls running at once per namespace (default: 16)"),
            OptionSpec(long: "max-sandboxes-per-namespace", short: nil, valueName: "N",
                       help: "start: sandboxes running at once per namespace (default: 16)"),
            OptionSpec(long: "max-pulls-per-namespace", short: nil, valueName: "N", help: "start: image pulls at once per namespace (default: 2)"),
            OptionSpec(long: "max-snapshots-per-namespace", short: nil, valueName: "N",
                       help: "start: snapshots kept per namespace (default: 8)"),
            OptionSpec(long: "max-volumes-per-namespace", short: nil, valueName: "N",
                       help: "start: named volumes kept per namespace (default: 32)"),
            OptionSpec(long: "namespace", short: "n", valueName: "NS", help: "keygen: the one namespace the key may use (default: all)"),
            OptionSpec(long: "expire", short: nil, valueName: "DURATION", help: "keygen: key lifetime, e.g. 12h, 30d or never (default: 90d)"),
            OptionSpec(long: "format", short: nil, valueName: "FORMAT", help: "keys ls: table or json (default: table)",
                       completion: .values(["table", "json"])),
        ],
        minPositionals: 1, maxPositionals: 3, positionalCompletion: .values(["start", "stop", "status", "keygen", "keys"]),
        examples: ["msb server start --detach", "msb server start --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem",
                   "msb server keygen --namespace team-a --expire 30d", "msb server keys ls",
                   "msb server keys revoke 3f9a0c1d2e4b5a69", "MSB_SERVER_URL=http://127.0.0.1:5555 MSB_API_KEY=… msb ls",
                   "msb server stop"])

    /// Keys live this long unless `--expire` says otherwise.
    static let defaultKeyLifetimeSeconds = 90.0 * 86400

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let paths = MSBPaths(environment: context.environment)
        let action = arguments.positionals[0]
        let extra = arguments.positionals.count - 1
        guard action == "keys" || extra == 0 else {
            throw MSBError(.invalidArgument, "'msb server \(action)' takes no further arguments", hint: "run 'msb server --help' for usage")
        }
        switch action {
        case "start": return try start(arguments, paths: paths)
        case "stop": return try stop(paths, context)
        case "status": return status(paths, context)
        case "keygen": return try ServerKeys.keygen(arguments, paths: paths, context)
        case "keys": return try ServerKeys.run(Array(arguments.positionals.dropFirst()), arguments, paths: paths, context)
        default:
            throw MSBError(.invalidArgument, "unknown server action '\(action)'", hint: "use start, stop, status, keygen or keys")
        }
    }

    private static func configuration(_ arguments: ParsedArguments, paths: MSBPaths) throws(MSBError) -> ServerConfiguration {
        var configuration = ServerConfiguration(paths: paths)
        configuration.version = CLI.version
        configuration.dev = arguments.flag("dev")
        if let host = arguments.value("host") { configuration.host = host }
        if let port = arguments.value("port") {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw MSBError(.invalidArgument, "invalid port '\(port)'", hint: "use a number from 1 to 65535")
            }
            configuration.port = number
        }
        if configuration.dev && !ServerConfiguration.isLoopback(configuration.host) {
            throw MSBError(.invalidArgument, "--dev turns authentication off, so it only listens on loopback, not \(configuration.host)",
                           hint: "drop --dev and issue keys with 'msb server keygen'")
        }
        if let n = arguments.value("max-sandboxes") {
            guard let count = Int(n), count >= 1 else { throw MSBError(.invalidArgument, "invalid --max-sandboxes '\(n)'", hint: "use a whole number of at least 1") }
            configuration.limits.maxRunningSandboxes = count
        }
        if let size = arguments.value("max-memory") { configuration.limits.maxTotalMemoryMiB = try InputParsing.parseMemoryMiB(size) }
        if let n = arguments.value("max-cpus") {
            guard let count = Int(n), count >= 1 else { throw MSBError(.invalidArgument, "invalid --max-cpus '\(n)'", hint: "use a whole number of at least 1") }
            configuration.limits.maxTotalCPUs = count
        }
        for dir in arguments.allValues("allow-volume") {
            guard dir.hasPrefix("/") else { throw MSBError(.invalidArgument, "--allow-volume needs an absolute path: \(dir)") }
            // Where the directory really is: what volumes are checked against, links resolved.
            guard let resolved = try? VolumeMount.resolvedHostDirectory(dir) else {
                throw MSBError(.invalidArgument, "--allow-volume needs an existing directory: \(dir)")
            }
            configuration.volumeAllowList.append(resolved)
        }
        try network(arguments, into: &configuration)
        configuration.allowInsecureRegistries = arguments.flag("allow-insecure-registries")
        configuration.keepSandboxesOnShutdown = arguments.flag("keep-sandboxes")
        configuration.prewarmImages = arguments.allValues("prewarm")
        configuration.prepareImages = arguments.flag("prepare-images")
        switch (arguments.value("tls-cert"), arguments.value("tls-key")) {
        case (nil, nil): break
        case (let certificate?, let key?):
            configuration.tls = .init(certificatePath: URL(fileURLWithPath: certificate).standardizedFileURL.path,
                                      keyPath: URL(fileURLWithPath: key).standardizedFileURL.path)
        default:
            throw MSBError(.invalidArgument, "--tls-cert and --tls-key go together", hint: "give both: the certificate chain and its private key")
        }
        configuration.insecureHTTP = arguments.flag("insecure-http")
        var limits = configuration.limits
        try wholeNumber(arguments, "max-connections", into: &limits.maxConnections)
        try wholeNumber(arguments, "max-attach-sessions", into: &limits.maxAttachSessions)
        try wholeNumber(arguments, "max-calls-per-namespace", into: &limits.maxCallsPerNamespace)
        try wholeNumber(arguments, "max-sandboxes-per-namespace", into: &limits.maxSandboxesPerNamespace)
        try wholeNumber(arguments, "max-pulls-per-namespace", into: &limits.maxPullsPerNamespace)
        try wholeNumber(arguments, "max-snapshots-per-namespace", into: &limits.maxSnapshotsPerNamespace)
        try wholeNumber(arguments, "max-volumes-per-namespace", into: &limits.maxVolumesPerNamespace)
        if let text = arguments.value("attach-idle-timeout") {
            limits.attachIdleTimeoutSeconds = Double(try InputParsing.parseDurationMilliseconds(text)) / 1000
        }
        if let text = arguments.value("request-timeout") {
            limits.requestDeadlineSeconds = Double(try InputParsing.parseDurationMilliseconds(text)) / 1000
        }
        configuration.limits = limits
        // Refused here, before a detached server is even started.
        try configuration.checkTransport()
        return configuration
    }

    /// What remote clients may ask of sandbox networks.
    private static func network(_ arguments: ParsedArguments, into configuration: inout ServerConfiguration) throws(MSBError) {
        for text in arguments.allValues("allow-port") { configuration.portAllowList.append(try PortAllowance.parse(text)) }
        switch arguments.value("default-net") {
        case nil, "on"?: configuration.defaultNetwork = true
        case "off"?: configuration.defaultNetwork = false
        case let other?: throw MSBError(.invalidArgument, "invalid --default-net '\(other)'", hint: "use on or off")
        }
        for text in arguments.allValues("namespace-net-allow") { configuration.netAllowList.append(try EgressRule.parse(text)) }
        configuration.remoteAllowHost = arguments.flag("remote-allow-host")
        configuration.remoteNetUnrestricted = arguments.flag("remote-net-unrestricted")
    }

    private static func wholeNumber(_ arguments: ParsedArguments, _ option: String, into value: inout Int) throws(MSBError) {
        guard let text = arguments.value(option) else { return }
        guard let number = Int(text), number >= 1, number <= 1_000_000 else {
            throw MSBError(.invalidArgument, "invalid --\(option) '\(text)'", hint: "use a whole number from 1 to 1000000")
        }
        value = number
    }

    private static func start(_ arguments: ParsedArguments, paths: MSBPaths) throws(MSBError) -> Int32 {
        let configuration = try configuration(arguments, paths: paths)
        if arguments.flag("detach") { return try ServerDaemon.detach(configuration) }
        try ServerRuntime.run(configuration) { CommandContext.writeError($0) }
        return 0
    }

    private static func stop(_ paths: MSBPaths, _ context: CommandContext) throws(MSBError) -> Int32 {
        guard let running = ServerPidFile.running(paths) else {
            throw MSBError(.notFound, "no msb server is running (from \(paths.home))")
        }
        _ = running.process.signal(SIGTERM)
        // The server stops its sandboxes before it exits; give it the time that takes.
        let deadline = Date().addingTimeInterval(ServerRuntime.shutdownGraceSeconds + 60)
        while running.process.isAlive && Date() < deadline { usleep(50_000) }
        if running.process.isAlive {
            _ = running.process.signal(SIGKILL)
            CommandContext.writeError("msb: the server did not stop in time and was killed")
        }
        context.write("stopped msb server at \(running.url)\n")
        return 0
    }

    private static func status(_ paths: MSBPaths, _ context: CommandContext) -> Int32 {
        guard let running = ServerPidFile.running(paths) else {
            context.write("not running\n")
            return 3  // like `systemctl status`: not running is its own answer, not an error
        }
        let auth = running.dev ? "dev mode, no API keys" : "API keys required"
        let healthy = ServerDaemon.isHealthy(url: running.url) ? "healthy" : "NOT answering"
        context.write("running at \(running.url) (pid \(running.pid), \(auth), \(healthy))\n")
        return 0
    }
}
