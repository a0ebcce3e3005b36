import Foundation
import MSBClient
import MSBCore

struct CreateCommand: Subcommand {
    static let spec = CommandSpec(
        name: "create", summary: "Create a sandbox and boot it in the background",
        usage: "[OPTIONS]",
        options: [CommandTable.nameOption,
                  OptionSpec(long: "user", short: "u", valueName: "USER", help: "Default user for execs: name, uid or uid:gid",
                             details: "default user for every exec: a name or uid looked up in the image's `/etc/passwd`, or `uid:gid` (default: the image's `User`, else root)"),
                  OptionSpec(long: "no-start", short: nil, valueName: nil, help: "Only create the sandbox; boot it later with 'msb start'",
                             details: "only create the sandbox (its record and, for a disk image, its disk layer); boot it later with `msb start`")]
            + CommandTable.sandboxOptions + startCommandOptions,
        examples: ["msb create --name web", "msb create --name big --memory 1G --cpus 2 -e MODE=test",
                   "msb create --name web2 --from web-ready", "msb create --name api -p 8080:80 -p 127.0.0.1:5353:53/udp",
                   "msb create --name iso --no-net", "msb create --name dev -v /home/me/src:/src:ro -v cache:/root/.cache", "msb create --name db --net-allow 10.20.0.0/16 --net-allow 10.30.1.5:5432"])

    /// The SDKs' `exec`, `scripts` and `shell`: create only, since `run` takes its command
    /// after `--` and removes the sandbox when it ends.
    static let startCommandOptions = [
        OptionSpec(long: "start-command", short: nil, valueName: "CMD", help: "Start '/bin/sh -c CMD' in the background at every start (see 'msb logs')",
                   details: "the sandbox's main process: `/bin/sh -c CMD` started in the background at every start, detached from any client; its output and exit status go to the sandbox's log, read with `msb logs NAME` (kept to 8 MiB)"),
        OptionSpec(long: "script", short: nil, valueName: "NAME=CMD", help: "A named command, run with 'msb exec NAME --script NAME' (repeatable)", repeatable: true,
                   details: "a named command (repeatable): `msb exec SANDBOX --script NAME [-- ARG...]` runs `/bin/sh -c CMD` with the arguments as `$@`; each start also writes it to `/.msb/scripts/NAME` in the guest. Names are 1–64 letters, digits, `.`, `_`, `-`"),
        OptionSpec(long: "shell", short: nil, valueName: "PATH", help: "The shell 'msb shell' opens (default: /bin/sh)",
                   details: "the shell `msb shell` opens, an absolute path in the guest (default: `/bin/sh`)"),
    ]

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        var config = try sandboxConfig(from: arguments, context: context)
        try applyStartCommandOptions(arguments, to: &config)
        let fetch = try imageFetch(from: arguments, context: context)
        let backend = context.backend
        let start = !arguments.flag("no-start")
        // Unknown names and cycles are refused before anything is removed or started.
        let dependencies = try backend.dependenciesToStart(of: config)
        if arguments.flag("replace") { try backend.removeIfPresent(config.name) }
        if start { for dependency in dependencies { _ = try backend.start(dependency.name) } }
        let info = try backend.create(config, start: start, fetch: fetch)
        context.write(info.name + "\n")
        return 0
    }

    /// Builds a config from the sandbox options shared by create and run.
    static func sandboxConfig(from arguments: ParsedArguments, context: CommandContext) throws(MSBError) -> SandboxConfig {
        let name = arguments.value("name") ?? NameGenerator.generate()
        try InputParsing.validateName(name)
        var config = SandboxConfig(name: name)
        if let snapshot = arguments.value("from") {
            // The snapshot's memory holds a kernel and processes sized for its image, memory
            // and cpus: a sandbox made from it cannot have others.
            let conflicting = ["image", "memory", "cpus"].filter { arguments.value($0) != nil }.map { "--" + $0 }
            if !conflicting.isEmpty {
                let list = conflicting.count == 1 ? conflicting[0]
                    : conflicting.dropLast().joined(separator: ", ") + " and " + (conflicting.last ?? "")
                throw MSBError(.invalidArgument, "--from takes the image, memory and cpus of the snapshot; drop \(list)")
            }
            try InputParsing.validateSnapshotName(snapshot)
            config.snapshot = snapshot
        }
        config.volumes = try volumes(from: arguments, snapshot: config.snapshot)
        if let image = arguments.value("image") { config.image = image }
        if let user = arguments.value("user"), !user.isEmpty { config.user = user }
        if let memory = arguments.value("memory") { config.memoryMiB = try InputParsing.parseMemoryMiB(memory) }
        if let cpus = arguments.value("cpus") { config.cpus = try InputParsing.parseCPUs(cpus) }
        for item in arguments.allValues("env") { try InputParsing.validateEnvironment(item) }
        config.environment = arguments.allValues("env")
        if let workdir = arguments.value("workdir") { config.workingDirectory = try validatedWorkdir(workdir) }
        if let hostname = arguments.value("hostname") {
            try InputParsing.validateHostname(hostname)
            config.hostname = hostname
        }
        if let duration = arguments.value("max-duration") {
            config.maxDurationMilliseconds = try InputParsing.parseDurationMilliseconds(duration)
        }
        if let idle = arguments.value("idle-timeout") {
            config.idleTimeoutMilliseconds = try InputParsing.parseDurationMilliseconds(idle)
        }
        let dependencies = arguments.allValues("depends-on")
        for dependency in dependencies { try InputParsing.validateName(dependency) }
        if dependencies.contains(name) { throw MSBError(.invalidArgument, "sandbox \(name) cannot depend on itself") }
        if !dependencies.isEmpty { config.dependsOn = dependencies.reduce(into: []) { if !$0.contains($1) { $0.append($1) } } }
        if let accel = arguments.value("accel") ?? context.environment["MSB_ACCEL"].flatMap({ $0.isEmpty ? nil : $0 }) {
            config.accelerator = try AcceleratorChoice.parse(accel)
        }
        if arguments.flag("cold") { config.coldBoot = true }
        // Host-side, so allowed with --from too: a fork gets a network of its own.
        config.network = try NetworkOptions.policy(from: arguments)
        return config
    }

    /// `--pull` (default `missing`), `--insecure-registry` and `MSB_REGISTRY_AUTH` (as `msb
    /// pull` reads it): how a missing image is fetched. Progress goes to stderr.
    static func imageFetch(from arguments: ParsedArguments, context: CommandContext) throws(MSBError) -> ImageFetch {
        var policy = PullPolicy.default
        if let text = arguments.value("pull") { policy = try PullPolicy.parse(text) }
        return ImageFetch(policy: policy, credentials: context.environment["MSB_REGISTRY_AUTH"].flatMap { $0.isEmpty ? nil : $0 },
                          insecure: arguments.flag("insecure-registry"), progress: { line in CommandContext.writeError("msb: " + line) })
    }

    /// `-v/--volume`: parsed and checked together; nil for none. The backend resolves host
    /// directories (they are the server's with --server).
    static func volumes(from arguments: ParsedArguments, snapshot: String?) throws(MSBError) -> [VolumeMount]? {
        let texts = arguments.allValues("volume")
        guard !texts.isEmpty else { return nil }
        if snapshot != nil {
            throw MSBError(.invalidArgument, "-v/--volume cannot be used with --from: snapshots cannot carry volumes",
                           hint: "QEMU cannot save a virtio-fs device; create the sandbox from an image to give it volumes")
        }
        var mounts: [VolumeMount] = []
        for text in texts { mounts.append(try VolumeMount.parse(text)) }
        try VolumeMount.check(mounts)
        return mounts
    }

    /// `--start-command`, `--script`, `--shell` into the config, checked.
    static func applyStartCommandOptions(_ arguments: ParsedArguments, to config: inout SandboxConfig) throws(MSBError) {
        if let command = arguments.value("start-command") {
            try InputParsing.validateCommandText(command, what: "--start-command")
            config.startCommand = command
        }
        var scripts: [String: String] = [:]
        for text in arguments.allValues("script") {
            let (name, command) = try InputParsing.parseScript(text)
            scripts[name] = command
        }
        if !scripts.isEmpty {
            try InputParsing.validateScripts(scripts)
            config.scripts = scripts
        }
        if let shell = arguments.value("shell") {
            try InputParsing.validateShellPath(shell)
            config.shell = shell
        }
    }

    static func validatedWorkdir(_ dir: String) throws(MSBError) -> String {
        guard dir.hasPrefix("/") else {
            throw MSBError(.invalidArgument, "working directory must be an absolute path: \(dir)")
        }
        return dir
    }
}

/// Docker-style generated names: adjective-noun plus a short random suffix.
enum NameGenerator {
    static let adjectives = ["brave", "calm", "eager", "fancy", "gentle", "happy", "keen", "lucid", "merry", "quiet", "swift", "witty"]
    static let nouns = ["otter", "falcon", "maple", "comet", "harbor", "lynx", "pebble", "quartz", "river", "spruce", "tiger", "willow"]

    static func generate() -> String {
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        return "\(adjectives.randomElement() ?? "brave")-\(nouns.randomElement() ?? "otter")-\(suffix)"
    }
}
