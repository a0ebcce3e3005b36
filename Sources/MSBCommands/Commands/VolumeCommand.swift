import Foundation
import MSBClient
import MSBCore

/// `msb volume`: named volumes, directories that outlive sandboxes and are shared into them
/// with `-v NAME:GUESTDIR` (made on first use, like docker's).
struct VolumeCommand: Subcommand {
    static let spec = CommandSpec(
        name: "volume", summary: "Create, list, inspect and remove named volumes",
        usage: "create NAME | ls [OPTIONS] | inspect NAME [OPTIONS] | rm NAME [NAME...]",
        options: [
            OptionSpec(long: "format", short: nil, valueName: "FORMAT", help: "ls and inspect output format: table or json (default: table)",
                       completion: .values(["table", "json"])),
            OptionSpec(long: "quiet", short: "q", valueName: nil, help: "ls: print names only"),
        ],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .volumeName,
        examples: ["msb volume create cache", "msb run -v cache:/root/.cache -- pip install requests", "msb volume ls",
                   "msb volume inspect cache", "msb volume rm cache"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let action = arguments.positionals[0]
        let names = Array(arguments.positionals.dropFirst())
        switch action {
        case "create":
            guard names.count == 1 else {
                throw MSBError(.invalidArgument, "'msb volume create' takes one volume name", hint: "usage: msb volume create NAME")
            }
            try StateStore.validateVolumeName(names[0])
            context.write(try context.backend.createVolume(names[0]).name + "\n")
            return 0
        case "ls", "list":
            guard names.isEmpty else { throw MSBError(.invalidArgument, "'msb volume ls' takes no names") }
            return try list(arguments, context)
        case "inspect":
            guard names.count == 1 else {
                throw MSBError(.invalidArgument, "'msb volume inspect' takes one volume name", hint: "usage: msb volume inspect NAME")
            }
            let json = try OutputFormatting.wantsJSON(arguments)
            try StateStore.validateVolumeName(names[0])
            let info = try context.backend.inspectVolume(names[0])
            context.write(json ? try OutputFormatting.json(RemoteWire.Volume(info)) + "\n" : described(info))
            return 0
        case "rm", "remove":
            guard !names.isEmpty else { throw MSBError(.invalidArgument, "'msb volume rm' needs a volume name") }
            for name in names { try StateStore.validateVolumeName(name) }
            return try forEachName(names, context) { (name: String) throws(MSBError) in
                try context.backend.removeVolume(name)
                context.write(name + "\n")
            }
        default:
            throw MSBError(.invalidArgument, "unknown volume action '\(action)'", hint: "use create, ls, inspect or rm")
        }
    }

    static func list(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let json = try OutputFormatting.wantsJSON(arguments)
        let volumes = try context.backend.listVolumes()
        if arguments.flag("quiet") {
            context.write(volumes.map { $0.name + "\n" }.joined())
        } else if json {
            context.write(try OutputFormatting.json(volumes.map(RemoteWire.Volume.init)) + "\n")
        } else {
            let now = Date()
            context.write(OutputFormatting.table(
                header: ["NAME", "USED BY", "CREATED"],
                rows: volumes.map { v in
                    [v.name, v.usedBy.isEmpty ? "-" : v.usedBy.joined(separator: ","), OutputFormatting.relative(v.createdAt, now: now)]
                }))
        }
        return 0
    }

    /// `inspect` as `key: value` lines; the host path only when the backend gives one (local).
    static func described(_ info: VolumeInfo) -> String {
        var lines = [("name", info.name)]
        if info.namespace != RemoteWire.defaultNamespace { lines.append(("namespace", info.namespace)) }
        lines.append(("created", OutputFormatting.iso8601(info.createdAt)))
        if let path = info.hostPath { lines.append(("host path", path)) }
        if let size = info.sizeBytes { lines.append(("size", OutputFormatting.bytes(Int(clamping: size)))) }
        lines.append(("used by", info.usedBy.isEmpty ? "-" : info.usedBy.joined(separator: ", ")))
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { "\($0.0):" + String(repeating: " ", count: width - $0.0.count + 1) + $0.1 + "\n" }.joined()
    }
}
