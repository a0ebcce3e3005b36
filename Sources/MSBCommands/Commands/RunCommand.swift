import MSBClient
import MSBCore

struct RunCommand: Subcommand {
    static let spec = CommandSpec(
        name: "run", summary: "Create a temporary sandbox, run one command in it, remove it",
        usage: "[OPTIONS] [--] [COMMAND [ARG...]]",
        options: [CommandTable.nameOption]
            + CommandTable.sandboxOptions.filter { $0.long != "env" && $0.long != "workdir" }
            + ExecCommand.execOptions,
        maxPositionals: 0, commandAfterPositionals: 0,
        examples: ["msb run -- echo hi", "msb run --memory 1G --timeout 1m -- sh -c 'make test'"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        var arguments = arguments
        // Checked before anything asks the backend (a usage error touches nothing); without a
        // command, the image's own is looked up once the image is here (it may be pulled).
        let config = try CreateCommand.sandboxConfig(from: arguments, context: context)
        let fetch = try CreateCommand.imageFetch(from: arguments, context: context)
        var probe = arguments
        if probe.trailing.isEmpty && arguments.value("image") != nil { probe.trailing = ["true"] }
        _ = try ExecCommand.execParameters(from: probe)
        let backend = context.backend
        let dependencies = try backend.dependenciesToStart(of: config)
        if arguments.flag("replace") { try backend.removeIfPresent(config.name) }
        for dependency in dependencies { _ = try backend.start(dependency.name) }
        _ = try backend.create(config, start: true, fetch: fetch)
        defer { try? backend.remove(config.name, force: true) }
        // Like docker run: without a command, the image's Entrypoint + Cmd.
        if arguments.trailing.isEmpty, let image = arguments.value("image"),
           let images = try? backend.listImages(),
           let command = (images.first { $0.name == image } ?? images.first { $0.name == ImageInfo.aliases[image] })?.command,
           !command.isEmpty {
            arguments.trailing = command
        }
        let parameters = try ExecCommand.execParameters(from: arguments)
        return try TerminalExec.run(backend, name: config.name, parameters, forceStdin: arguments.flag("interactive"),
                                    detachKeys: arguments.value("detach-keys") ?? TerminalExec.defaultDetachKeys)
    }
}
