import MSBClient
import MSBCore

struct VersionCommand: Subcommand {
    static let spec = CommandSpec(name: "version", summary: "Show the version", usage: "", options: [])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        context.write("msb \(CLI.version)\n")
        return 0
    }
}
