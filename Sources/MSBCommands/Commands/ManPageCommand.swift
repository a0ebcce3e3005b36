import MSBClient
import MSBCore

/// Hidden: prints the man page (man/msb.1 is this output, checked by a test).
struct ManPageCommand: Subcommand {
    static let spec = CommandSpec(name: "_manpage", summary: "Print the man page (internal)", usage: "", options: [], hidden: true)

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        context.write(ManPage.render())
        return 0
    }
}
