import MSBClient
import MSBCore

struct RemoveCommand: Subcommand {
    static let spec = CommandSpec(
        name: "rm", summary: "Remove sandboxes and their files",
        usage: "[OPTIONS] NAME [NAME...]",
        options: [OptionSpec(long: "force", short: "f", valueName: nil, help: "Stop a running sandbox first (killing it)")],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .sandboxName,
        examples: ["msb rm web", "msb rm -f web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let force = arguments.flag("force")
        return try forEachName(arguments.positionals, context) { (name: String) throws(MSBError) in
            try context.backend.remove(name, force: force)
            context.write(name + "\n")
        }
    }
}
