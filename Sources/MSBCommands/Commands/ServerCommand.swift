import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBServer

struct ServerCommand: Subcommand {
    static let spec = CommandSpec(
        name: "server", summary: "Serve sandboxes over HTTP to remote msb clients and the sandbox SDKs",
        usage: "start|stop|status|keygen [OPTIONS]",
        options: [
            OptionSpec(long: "host", short: nil, valueName: "ADDR", help: "start: address to listen on (default: 127.0.0.1)"),
            OptionSpec(long: "port", short: "p", valueName: "PORT", help: "start: port to listen on (default: 5555)"),
            OptionSpec(long: "detach", short: "d", valueName: nil, help: "start: run in the background (log in $MSB_HOME/server/server.log)"),
            OptionSpec(long: "dev", short: nil, valueName: nil, help: "start: accept requests without API keys (loopback only)"),
            OptionSpec(long: "max-sandboxes", short: nil, valueName: "N", help: "start: sandboxes running at once (default: 32)"),
            OptionSpec(long: "max-memory", short: nil, valueName: "SIZE", help: "start: memory of all running sandboxes (default: 3/4 of RAM)"),
            OptionSpec(long: "max-cpus", short: nil, valueName: "N", help: "start: vCPUs of all running sandboxes (default: 4 per core)"),
            OptionSpec(long: "allow-volume", short: nil, valueName: "DIR", help: "start: host directory clients may name in volumes (repeatable)", repeatable: true),
            OptionSpec(long: "allow-port", short: nil, valueName: "PORT", help: "start: privileged host port clients may publish (repeatable)", repeatable: true),
            OptionSpec(long: "allow-insecure-registries", short: nil, valueName: nil, help: "start: let clients pull from plain-HTTP registries"),
            OptionSpec(long: "keep-sandboxes", short: nil, valueName: nil, help: "start: leave sandboxes running when the server stops"),
            OptionSpec(long: "namespace", short: "n", valueName: "NS", help: "keygen: the one namespace the key may use (default: all)"),
            OptionSpec(long: "expire", short: nil, valueName: "DURATION", help: "keygen: key lifetime, e.g. 12h or 30d (default: never)"),
        ],
        minPositionals: 1, maxPositionals: 1, positionalCompletion: .values(["start", "stop", "status", "keygen"]),
        examples: ["msb server start --detach", "msb server keygen --namespace team-a --expire 30d",
                   "MSB_SERVER_URL=http://127.0.0.1:5555 MSB_API_KEY=… msb ls", "msb server stop"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let paths = MSBPaths(environment: context.environment)
        switch arguments.positionals[0] {
        case "start": return try start(arguments, paths: paths)
        case "stop": return try stop(paths, context)
        case "status": return status(paths, context)
        case "keygen":
            var namespace = "*"
            if let requested = arguments.value("namespace") {
                try InputParsing.validateNamespace(requested)
                namespace = requested
            }
            let lifetime = try arguments.value("expire").map { (text: String) throws(MSBError) in
                Double(try InputParsing.parseDurationMilliseconds(text)) / 1000
            }
            let key = try APIKeyAuthority.load(serverDirectory: paths.serverDirectory).issue(namespace: namespace, expiresIn: lifetime)
            let scope = namespace == "*" ? "all namespaces" : "namespace \(namespace)"
            let expiry = lifetime.map { "expires \(RemoteWire.iso8601(Date().addingTimeInterval($0)))" } ?? "does not expire"
            CommandContext.writeError("msb: API key for \(scope), \(expiry); it is shown once: set it as MSB_API_KEY")
            context.write(key + "\n")
            return 0
        case let action:
            throw MSBError(.invalidArgument, "unknown server action '\(action)'", hint: "use start, stop, status or keygen")
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
        if configuration.dev && !["127.0.0.1", "::1", "localhost"].contains(configuration.host) {
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
            configuration.volumeAllowList.append(URL(fileURLWithPath: dir).standardizedFileURL.path)
        }
        for text in arguments.allValues("allow-port") {
            guard let port = Int(text), (1...65535).contains(port) else { throw MSBError(.invalidArgument, "invalid --allow-port '\(text)'") }
            configuration.privilegedPortAllowList.insert(port)
        }
        configuration.allowInsecureRegistries = arguments.flag("allow-insecure-registries")
        configuration.keepSandboxesOnShutdown = arguments.flag("keep-sandboxes")
        return configuration
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
