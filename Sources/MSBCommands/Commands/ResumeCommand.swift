import MSBClient
import MSBCore

/// `msb resume`: continues a paused sandbox's vCPUs where they stopped.
struct ResumeCommand: Subcommand {
    static let spec = CommandSpec(
        name: "resume", summary: "Continue a paused sandbox",
        usage: "NAME [NAME...]", options: [],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .sandboxName,
        examples: ["msb resume web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        try forEachName(arguments.positionals, context) { (name: String) throws(MSBError) in
            context.write(try context.backend.setPaused(name, false).name + "\n")
        }
    }
}
