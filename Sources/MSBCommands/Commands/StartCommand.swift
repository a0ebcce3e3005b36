import MSBClient
import MSBCore

struct StartCommand: Subcommand {
    static let spec = CommandSpec(
        name: "start", summary: "Boot stopped sandboxes with their saved config",
        usage: "NAME [NAME...]", options: [], minPositionals: 1, maxPositionals: nil,
        positionalCompletion: .sandboxName, examples: ["msb start web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        try forEachName(arguments.positionals, context) { (name: String) throws(MSBError) in
            context.write(try context.backend.start(name).name + "\n")
        }
    }
}
