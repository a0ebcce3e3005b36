import MSBClient
import MSBCore

struct HelpCommand: Subcommand {
    static let spec = CommandSpec(
        name: "help", summary: "Show help for msb or one command", usage: "[COMMAND]", options: [],
        maxPositionals: 1, examples: ["msb help exec"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        guard let name = arguments.positionals.first else {
            context.write(HelpRenderer.overview())
            return 0
        }
        guard let command = CommandTable.command(named: name), !command.spec.hidden else {
            throw MSBError(.invalidArgument, "unknown command '\(name)'", hint: "run 'msb --help' for commands")
        }
        context.write(HelpRenderer.help(for: command.spec))
        return 0
    }
}
