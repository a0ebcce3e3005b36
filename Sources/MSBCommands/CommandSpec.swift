import MSBClient
import MSBCore
/// One option of a subcommand, as the parser, help, completions and man page see it.
package struct OptionSpec: Sendable, Equatable {
    package var long: String
    package var short: Character?
    /// Placeholder for the value (`SIZE`); nil for a flag.
    package var valueName: String?
    package var help: String
    package var repeatable = false
    /// What the README's option tables and the man page say of the option, where that is
    /// more than `help` (which `--help` prints): plain text with `code` spans.
    package var details: String? = nil
    /// What the shells should complete for the value.
    package var completion: ValueCompletion = .none

    package var takesValue: Bool { valueName != nil }

    /// The reference text: `details`, else `help`.
    package var documentation: String { details ?? help }

    package var synopsis: String {
        let names = (short.map { "-\($0), " } ?? "    ") + "--\(long)"
        return valueName.map { "\(names) \($0)" } ?? names
    }
}

package enum ValueCompletion: Sendable, Equatable {
    case none, sandboxName, image, snapshotName, volumeName, values([String])
}

/// One subcommand: the single source for parsing, `--help`, completion and the man page.
package struct CommandSpec: Sendable {
    package var name: String
    package var summary: String
    /// The arguments after the command name, e.g. `[OPTIONS] NAME [--] COMMAND [ARG...]`.
    package var usage: String
    package var options: [OptionSpec]
    package var minPositionals = 0
    /// nil: any number.
    package var maxPositionals: Int? = 0
    /// After this many positionals, every further word is the command to run in the guest
    /// (like `docker exec NAME CMD...`); `--` also starts it. nil: no trailing command.
    package var commandAfterPositionals: Int?
    /// What the shells should complete for positionals.
    package var positionalCompletion: ValueCompletion = .none
    package var examples: [String] = []
    package var hidden = false

    package static let helpOption = OptionSpec(long: "help", short: "h", valueName: nil, help: "Show help for this command")

    package var allOptions: [OptionSpec] { options + [Self.helpOption] }

    package func option(long: String) -> OptionSpec? { allOptions.first { $0.long == long } }
    package func option(short: Character) -> OptionSpec? { allOptions.first { $0.short == short } }
}
