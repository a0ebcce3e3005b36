import MSBClient
import MSBCore

/// A subcommand: its spec (parser, help, completions, man page) and what it does.
package protocol Subcommand: Sendable {
    static var spec: CommandSpec { get }
    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32
}

/// The one table every consumer reads: the dispatcher, `--help`, completions and man page.
package enum CommandTable {
    package static let commands: [any Subcommand.Type] = [
        CreateCommand.self, StartCommand.self, ExecCommand.self, CopyCommand.self, FileCommand.self, ShellCommand.self, ReplCommand.self, LogsCommand.self, RunCommand.self, ListCommand.self, InspectCommand.self, PortCommand.self, MetricsCommand.self, PullCommand.self, ImageCommand.self,
        SnapshotCommand.self, VolumeCommand.self, PauseCommand.self, ResumeCommand.self, StopCommand.self, DrainCommand.self, WaitCommand.self, RemoveCommand.self, ServerCommand.self, CompletionCommand.self, HelpCommand.self, VersionCommand.self,
        CompleteCommand.self, ManPageCommand.self, ReadmeCommand.self,
    ]

    package static var specs: [CommandSpec] { commands.map { $0.spec } }
    package static var visibleSpecs: [CommandSpec] { specs.filter { !$0.hidden } }

    package static func command(named name: String) -> (any Subcommand.Type)? {
        commands.first { $0.spec.name == name }
    }

    /// Commands that act on this host only, whatever --server / MSB_SERVER_URL say.
    static let hostOnlyCommands: Set<String> = ["server", "completion", "help", "version", "_manpage", "_readme"]

    /// Options that come before the command and apply to all of them.
    package static let globalOptions: [OptionSpec] = [
        OptionSpec(long: "server", short: nil, valueName: "URL",
                   help: "Drive the msb server at URL instead of this host (default: $MSB_SERVER_URL)"),
        OptionSpec(long: "namespace", short: nil, valueName: "NS",
                   help: "Server namespace to work in (default: $MSB_NAMESPACE or default)"),
        OptionSpec(long: "cacert", short: nil, valueName: "FILE",
                   help: "Verify an https server against the CA certificates in FILE instead of the system's (default: $MSB_CACERT)"),
    ]

    /// The global option `word` names (`--server`, `--server=URL`), if any.
    static func globalOption(matching word: String) -> OptionSpec? {
        guard word.hasPrefix("--") else { return nil }
        let name = word.dropFirst(2).split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
        return globalOptions.first { $0.long == name }
    }

    /// The sandbox's name, for create and run.
    static let nameOption = OptionSpec(
        long: "name", short: "n", valueName: "NAME", help: "Sandbox name (default: generated)",
        details: "1–63 characters of letters, digits, `_`, `.`, `-`, starting with a letter or digit (default: generated, e.g. `calm-otter-3fa2`)")

    /// Options shared by the sandbox-defining commands (create, run).
    static let sandboxOptions: [OptionSpec] = [
        OptionSpec(long: "image", short: nil, valueName: "IMAGE", help: "Image to boot (default: base)",
                   details: "image to boot: `base` (the busybox initramfs, default), a built image such as `python` or `node` (`microsandbox/python` and `microsandbox/node` resolve to them), or a pulled one (`docker.io/library/alpine:3.20`); one that is not here yet is pulled or built first (see `--pull`)",
                   completion: .image),
        OptionSpec(long: "pull", short: nil, valueName: "POLICY", help: "When to fetch the image: missing, always or never (default: missing)",
                   details: "`missing` (default): pull the image if it is not here (`python` and `node` are built instead, which takes a few minutes once); `always`: ask the registry again (an unchanged digest downloads nothing; built images are rebuilt only by `msb image build --force`); `never`: fail if the image is not here. Registry credentials come from `MSB_REGISTRY_AUTH=user:password`; with `--server` the server fetches it",
                   completion: .values(["missing", "always", "never"])),
        OptionSpec(long: "insecure-registry", short: nil, valueName: nil, help: "Pull the image over plain HTTP (a local registry without TLS)",
                   details: "pull the image over plain HTTP (a local registry without TLS), as `msb pull --insecure`"),
        OptionSpec(long: "from", short: nil, valueName: "SNAP",
                   help: "Start from snapshot SNAP (see 'msb snapshot'), with its image, memory and cpus",
                   details: "start from snapshot `SNAP` (see `msb snapshot`): its memory, processes and disk as they were; the image, memory and cpus are the snapshot's, so `--image`, `--memory` and `--cpus` are refused with it",
                   completion: .snapshotName),
        OptionSpec(long: "memory", short: "m", valueName: "SIZE", help: "Memory, e.g. 512M or 1G (default: 512M)",
                   details: "`512M`, `1G`, `2048` (a bare number is MiB); 64M to 1024G (default: 512M)"),
        OptionSpec(long: "cpus", short: nil, valueName: "N", help: "Virtual CPUs (default: 1)", details: "virtual CPUs, 1–64 (default: 1)"),
        OptionSpec(long: "env", short: "e", valueName: "KEY=VALUE", help: "Set an environment variable (repeatable)", repeatable: true,
                   details: "default environment for every exec (repeatable)"),
        OptionSpec(long: "workdir", short: "w", valueName: "DIR", help: "Working directory for commands (default: /)",
                   details: "default working directory for every exec, absolute (default: `/`)"),
        OptionSpec(long: "hostname", short: nil, valueName: "NAME", help: "The guest's hostname (default: the sandbox name)",
                   details: "the guest's hostname: dot-separated labels of 1–63 letters, digits and `-` (not first or last), 64 characters at most (default: the sandbox name)"),
        OptionSpec(long: "replace", short: nil, valueName: nil, help: "Remove a sandbox of the same name first, stopping it",
                   details: "remove a sandbox of the same name first (stopping it if it runs), then create this one; without it an existing name is an error"),
        OptionSpec(long: "max-duration", short: nil, valueName: "DURATION", help: "Stop the sandbox after this long, e.g. 30m",
                   details: "stop the sandbox after this long, e.g. `30m`"),
        OptionSpec(long: "idle-timeout", short: nil, valueName: "DURATION", help: "Stop the sandbox once no client was served for this long, e.g. 10m",
                   details: "stop the sandbox once no exec or REPL run has been in progress for this long, e.g. `10m` (a bare number is seconds); counted from the start or the end of the last one; `metrics`, `ls`, `pause` do not count"),
        OptionSpec(long: "depends-on", short: nil, valueName: "NAME", help: "Start sandbox NAME first whenever this one starts (repeatable)", repeatable: true,
                   details: "a sandbox started first, whenever this one starts, if it is not running (repeatable); it must exist, and cycles are refused",
                   completion: .sandboxName),
        OptionSpec(long: "accel", short: nil, valueName: "MODE", help: "Accelerator: auto, kvm or tcg (default: $MSB_ACCEL or auto)",
                   details: "`auto`, `kvm` or `tcg` (default: `$MSB_ACCEL`, else `auto`)", completion: .values(["auto", "kvm", "tcg"])),
        OptionSpec(long: "cold", short: nil, valueName: nil, help: "Boot the kernel instead of resuming a saved start template",
                   details: "boot the kernel instead of resuming a start template"),
        OptionSpec(long: "volume", short: "v", valueName: "SPEC",
                   help: "Share a directory: HOSTDIR:GUESTDIR[:ro], or NAME:GUESTDIR[:ro] for a named volume, made if missing (repeatable)",
                   repeatable: true,
                   details: "share a host directory (`HOSTDIR:GUESTDIR[:ro]`, absolute) or a named volume (`NAME:GUESTDIR[:ro]`, made if missing) through virtio-fs; `:ro` is enforced by the host; a sandbox with volumes boots cold (repeatable)"),
    ] + NetworkOptions.options
}
