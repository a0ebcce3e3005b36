import MSBClient
import MSBCore

/// `msb logs NAME`: the output of the sandbox's start command (`create --start-command`,
/// the SDKs' `exec`), with msb's own `[msb]` lines: when each start began it and how it
/// ended. The bytes are the guest's, written out as they are (like `msb exec` output).
struct LogsCommand: Subcommand {
    static let spec = CommandSpec(
        name: "logs", summary: "Print the output of a sandbox's start command",
        usage: "[OPTIONS] NAME",
        options: [
            OptionSpec(long: "follow", short: "f", valueName: nil, help: "Keep printing new output until the sandbox stops",
                       details: "keep printing what the start command writes until the sandbox stops (or Ctrl-C); on this host only"),
            OptionSpec(long: "tail", short: "n", valueName: "N", help: "Only the last N lines",
                       details: "only the last `N` lines of what is kept (the log keeps the last 8 MiB)"),
        ],
        minPositionals: 1, maxPositionals: 1, positionalCompletion: .sandboxName,
        examples: ["msb logs web", "msb logs -f -n 20 web"])

    /// What one call reads at most: the whole log (two files of 4 MiB) on this host.
    static let maxBytes = 2 * BoundedLogFile.startCommandCapBytes

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let name = arguments.positionals[0]
        try InputParsing.validateName(name)
        var tailLines: Int?
        if let text = arguments.value("tail") {
            guard let lines = Int(text), lines >= 0 else {
                throw MSBError(.invalidArgument, "invalid --tail '\(PrintableText.escaped(text, maxScalars: 40))'", hint: "give a number of lines, e.g. -n 20")
            }
            tailLines = lines
        }
        let follow = arguments.flag("follow")
        let backend = context.backend
        let local = backend as? LocalBackend
        if follow && local == nil {
            throw MSBError(.unsupported, "msb logs --follow works on this host only", hint: "drop -f to print the log kept by the server")
        }
        let log = try backend.logs(name, maxBytes: maxBytes)
        guard context.writeBytes(tailLines.map { log.lastLines($0) } ?? log.bytes) else { return 141 }
        if follow, let local, !(try local.followLogs(name) { bytes in context.writeBytes(bytes) }) { return 141 }
        return 0
    }
}
