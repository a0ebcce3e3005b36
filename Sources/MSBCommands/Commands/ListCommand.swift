import Foundation
import MSBClient
import MSBCore

struct ListCommand: Subcommand {
    static let spec = CommandSpec(
        name: "ls", summary: "List sandboxes",
        usage: "[OPTIONS]",
        options: [
            OptionSpec(long: "format", short: nil, valueName: "FORMAT", help: "Output format: table or json (default: table)",
                       completion: .values(["table", "json"])),
            OptionSpec(long: "quiet", short: "q", valueName: nil, help: "Print names only"),
        ],
        examples: ["msb ls", "msb ls --format json"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let json = try OutputFormatting.wantsJSON(arguments)
        let sandboxes = try context.backend.list()
        if arguments.flag("quiet") {
            context.write(sandboxes.map { $0.name + "\n" }.joined())
        } else if json {
            context.write(try OutputFormatting.json(sandboxes.map(RemoteWire.Sandbox.init)) + "\n")
        } else {
            let now = Date()
            let rows = sandboxes.map { s in
                [s.name, s.config.image, s.status.rawValue, String(s.config.cpus),
                 InputParsing.formatMemory(mib: s.config.memoryMiB), OutputFormatting.relative(s.createdAt, now: now)]
            }
            context.write(OutputFormatting.table(header: ["NAME", "IMAGE", "STATUS", "CPUS", "MEMORY", "CREATED"], rows: rows))
        }
        return 0
    }
}
