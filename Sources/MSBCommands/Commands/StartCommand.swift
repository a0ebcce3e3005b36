import MSBClient
import MSBCore

struct StartCommand: Subcommand {
    static let spec = CommandSpec(
        name: "start", summary: "Boot stopped sandboxes with their saved config",
        usage: "NAME [NAME...]", options: [], minPositionals: 1, maxPositionals: nil,
        positionalCompletion: .sandboxName, examples: ["msb start web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        try forEachName(arguments.positionals) { (name: String) throws(MSBError) in
            context.write(try context.backend.start(name).name + "\n")
        }
    }
}

/// Runs `body` for every name; reports each failure and returns 1 if any failed,
/// like `docker stop a b c`.
func forEachName(_ names: [String], _ body: (String) throws(MSBError) -> Void) throws(MSBError) -> Int32 {
    if names.count == 1 {
        try body(names[0])
        return 0
    }
    var code: Int32 = 0
    for name in names {
        do { try body(name) } catch {
            code = max(code, CLI.report(error))
        }
    }
    return code
}
