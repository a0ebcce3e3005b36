import MSBClient
import MSBCore

/// `msb pause`: the vCPUs stop (no CPU used) with memory, processes and connections kept;
/// `msb resume` continues exactly there.
struct PauseCommand: Subcommand {
    static let spec = CommandSpec(
        name: "pause", summary: "Stop a sandbox's vCPUs, keeping its memory and processes",
        usage: "NAME [NAME...]", options: [],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .sandboxName,
        examples: ["msb pause web", "msb resume web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        try forEachName(arguments.positionals, context) { (name: String) throws(MSBError) in
            context.write(try context.backend.setPaused(name, true).name + "\n")
        }
    }
}
