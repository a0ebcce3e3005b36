import MSBClient
import MSBCore

/// Hidden: words for completion scripts (sandbox, image, snapshot or volume names), one per line.
struct CompleteCommand: Subcommand {
    static let spec = CommandSpec(
        name: "_complete", summary: "Print completion candidates (internal)", usage: "sandboxes|images|snapshots|volumes", options: [],
        minPositionals: 1, maxPositionals: 1, hidden: true)

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        switch arguments.positionals[0] {
        case "sandboxes": context.write(try context.backend.list().map { $0.name + "\n" }.joined())
        case "images":
            context.write(try context.backend.listImages().map { $0.name + "\n" }.joined())
        case "snapshots": context.write(try context.backend.listSnapshots().map { $0.name + "\n" }.joined())
        case "volumes": context.write(try context.backend.listVolumes().map { $0.name + "\n" }.joined())
        default: throw MSBError(.invalidArgument, "unknown completion kind '\(arguments.positionals[0])'")
        }
        return 0
    }
}
