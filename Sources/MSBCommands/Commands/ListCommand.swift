import Foundation
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
            context.write(try OutputFormatting.json(sandboxes.map(SandboxJSON.init)) + "\n")
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

/// The JSON shape of one sandbox in `ls --format json`.
struct SandboxJSON: Encodable {
    let name: String
    let namespace: String
    let image: String
    let status: String
    let running: Bool
    let cpus: Int
    let memory_mib: Int
    let created_at: String
    let started_at: String?
    let status_reason: String?
    let accelerator: String?

    init(_ info: SandboxInfo) {
        name = info.name
        namespace = info.namespace
        image = info.config.image
        status = info.status.rawValue
        running = info.status == .running
        cpus = info.config.cpus
        memory_mib = info.config.memoryMiB
        created_at = OutputFormatting.iso8601(info.createdAt)
        started_at = info.startedAt.map(OutputFormatting.iso8601)
        status_reason = info.statusReason
        accelerator = info.activeAccelerator
    }
}
