import MSBClient
import MSBCore

struct ExecCommand: Subcommand {
    static let execOptions: [OptionSpec] = [
        OptionSpec(long: "env", short: "e", valueName: "KEY=VALUE", help: "Set an environment variable (repeatable)", repeatable: true,
                   details: "environment for the command (repeatable); overrides the sandbox's `create -e` defaults"),
        OptionSpec(long: "workdir", short: "w", valueName: "DIR", help: "Working directory in the guest",
                   details: "working directory for the command, absolute; overrides `create -w`"),
        OptionSpec(long: "timeout", short: nil, valueName: "DURATION", help: "Kill the command after this long (exit 124), e.g. 30s",
                   details: "kill the command's whole process group after this long and exit 124, e.g. `30s`"),
        OptionSpec(long: "interactive", short: "i", valueName: nil, help: "Forward stdin even when it is a terminal",
                   details: "forward stdin even when it is a terminal (without `-i` it is forwarded only from a pipe or a file)"),
        OptionSpec(long: "user", short: "u", valueName: "USER", help: "Run as name, uid or uid:gid (default: the image's User, else root)",
                   details: "run as a name or uid looked up in the image's `/etc/passwd`, or `uid:gid` (default: `create -u`, else the image's `User`, else root)"),
        OptionSpec(long: "tty", short: "t", valueName: nil, help: "Run the command on a pseudo-terminal (full-screen programs work)",
                   details: "run the command on a pseudo-terminal in the guest, so full-screen programs work; needs a terminal on stdin"),
        OptionSpec(long: "detach-keys", short: nil, valueName: "KEYS", help: "Keys that detach from a -t session (default: ctrl-])",
                   details: "keys that leave a `-t` session and let the command run on, in docker's format (default: `ctrl-]`; e.g. `ctrl-p,ctrl-q`)"),
    ]

    static let spec = CommandSpec(
        name: "exec", summary: "Run a command in a running sandbox",
        usage: "[OPTIONS] NAME [--] COMMAND [ARG...]", options: execOptions + [scriptOption],
        minPositionals: 1, maxPositionals: 1, commandAfterPositionals: 1, positionalCompletion: .sandboxName,
        examples: ["msb exec web -- uname -a", "msb exec web --script test -- -v", "msb exec -t web -- top", "echo hi | msb exec web -- cat", "msb exec -e FOO=bar -w /tmp web -- sh -c 'echo $FOO; pwd'"])

    /// exec only: `run` makes a sandbox without scripts.
    static let scriptOption = OptionSpec(
        long: "script", short: nil, valueName: "SCRIPT", help: "Run the sandbox's script SCRIPT (create --script); ARGs become \"$@\"",
        details: "run the sandbox's named script (`create --script NAME=CMD`, or the SDKs' `scripts`) as `/bin/sh -c CMD`; the arguments after `--` become `$@`")

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let name = arguments.positionals[0]
        try InputParsing.validateName(name)
        var arguments = arguments
        if let script = arguments.value("script") {
            try InputParsing.validateScriptName(script)
            arguments.trailing = try scriptArgv(script, arguments: arguments.trailing, of: context.backend.inspect(name).config)
        }
        let parameters = try execParameters(from: arguments)
        return try TerminalExec.run(context.backend, name: name, parameters, forceStdin: arguments.flag("interactive"),
                                    detachKeys: arguments.value("detach-keys") ?? TerminalExec.defaultDetachKeys)
    }

    /// `/bin/sh -c CMD NAME ARG...`: the script's arguments are its `$@` (`$0` is its name).
    static func scriptArgv(_ script: String, arguments: [String], of config: SandboxConfig) throws(MSBError) -> [String] {
        let scripts = config.scripts ?? [:]
        guard let command = scripts[script] else {
            let known = scripts.keys.sorted()
            throw MSBError(.notFound, "sandbox \(config.name) has no script '\(script)'",
                           hint: known.isEmpty ? "it has no scripts; give them at create with --script NAME=CMD"
                               : "its scripts: " + known.joined(separator: ", "))
        }
        return ["/bin/sh", "-c", command, script] + arguments
    }

    /// The exec options shared by exec and run.
    static func execParameters(from arguments: ParsedArguments) throws(MSBError) -> ExecParameters {
        guard !arguments.trailing.isEmpty else {
            throw MSBError(.invalidArgument, "no command given",
                           hint: "put the command after the sandbox name, e.g. msb exec web -- uname -a")
        }
        for item in arguments.allValues("env") { try InputParsing.validateEnvironment(item) }
        var parameters = ExecParameters(argv: arguments.trailing, environment: arguments.allValues("env"), tty: arguments.flag("tty"))
        if let dir = arguments.value("workdir") { parameters.workingDirectory = try CreateCommand.validatedWorkdir(dir) }
        if let user = arguments.value("user") { parameters.user = user }
        if let timeout = arguments.value("timeout") {
            parameters.timeoutMilliseconds = try InputParsing.parseDurationMilliseconds(timeout)
        }
        return parameters
    }
}
