import Foundation
import MSBCommands

// The executable only dispatches: everything lives in MSBCommands so tests can import it.
exit(CLI.main(Array(CommandLine.arguments.dropFirst())))
