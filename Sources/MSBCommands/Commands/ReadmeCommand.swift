import Foundation
import MSBClient
import MSBCore

/// Hidden: reads README.md on stdin and prints it with its generated sections (the command
/// list and the option tables) rewritten from the command table; a test checks README.md.
struct ReadmeCommand: Subcommand {
    static let spec = CommandSpec(name: "_readme", summary: "Print README.md (stdin) with its generated sections rewritten (internal)",
                                  usage: "< README.md", options: [], hidden: true)

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        guard let readme = String(data: input, encoding: .utf8) else {
            throw MSBError(.invalidArgument, "the README on stdin is not UTF-8")
        }
        context.write(try ReadmeSections.regenerated(readme))
        return 0
    }
}
