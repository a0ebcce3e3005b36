import Foundation
import MSBClient
import MSBCore

/// `msb snapshot`: save a running sandbox (memory, devices, disk) under a name, so that any
/// number of sandboxes can start from exactly there with `msb create --from SNAP` (a fork).
struct SnapshotCommand: Subcommand {
    static let spec = CommandSpec(
        name: "snapshot", summary: "Save a running sandbox as a named snapshot; list and remove snapshots",
        usage: "create NAME [SNAP] | ls [OPTIONS] | rm SNAP [SNAP...]",
        options: [
            OptionSpec(long: "format", short: nil, valueName: "FORMAT", help: "ls output format: table or json (default: table)",
                       completion: .values(["table", "json"])),
            OptionSpec(long: "quiet", short: "q", valueName: nil, help: "ls: print names only"),
        ],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .snapshotName,
        examples: ["msb snapshot create web web-ready", "msb create --name web2 --from web-ready", "msb snapshot ls",
                   "msb snapshot rm web-ready"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let action = arguments.positionals[0]
        let names = Array(arguments.positionals.dropFirst())
        switch action {
        case "create":
            guard let sandbox = names.first, names.count <= 2 else {
                throw MSBError(.invalidArgument, "'msb snapshot create' takes a sandbox name and an optional snapshot name",
                               hint: "usage: msb snapshot create NAME [SNAP]")
            }
            try InputParsing.validateName(sandbox)
            let snapshot = names.count == 2 ? names[1] : defaultName(of: sandbox, at: Date())
            try InputParsing.validateSnapshotName(snapshot)
            context.write(try context.backend.createSnapshot(snapshot, of: sandbox).name + "\n")
            return 0
        case "ls", "list":
            guard names.isEmpty else { throw MSBError(.invalidArgument, "'msb snapshot ls' takes no names") }
            return try list(arguments, context)
        case "rm", "remove":
            guard !names.isEmpty else { throw MSBError(.invalidArgument, "'msb snapshot rm' needs a snapshot name") }
            return try forEachName(names, context) { (name: String) throws(MSBError) in
                try InputParsing.validateSnapshotName(name)
                try context.backend.removeSnapshot(name)
                context.write(name + "\n")
            }
        default:
            throw MSBError(.invalidArgument, "unknown snapshot action '\(action)'", hint: "use create, ls or rm")
        }
    }

    /// `NAME-yyyyMMdd-HHmmss` (UTC), the sandbox name cut so that the whole stays a valid name.
    static func defaultName(of sandbox: String, at date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let stamp = "-" + formatter.string(from: date)
        return String(sandbox.prefix(63 - stamp.count)) + stamp
    }

    static func list(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let json = try OutputFormatting.wantsJSON(arguments)
        let snapshots = try context.backend.listSnapshots()
        if arguments.flag("quiet") {
            context.write(snapshots.map { $0.name + "\n" }.joined())
        } else if json {
            context.write(try OutputFormatting.json(snapshots.map(RemoteWire.Snapshot.init)) + "\n")
        } else {
            let now = Date()
            context.write(OutputFormatting.table(
                header: ["NAME", "SOURCE", "IMAGE", "MEMORY", "CPUS", "SIZE", "CREATED"],
                rows: snapshots.map { s in
                    [s.name, s.source, s.image, InputParsing.formatMemory(mib: s.memoryMiB), String(s.cpus),
                     OutputFormatting.bytes(Int(clamping: s.sizeBytes)), OutputFormatting.relative(s.createdAt, now: now)]
                }))
        }
        return 0
    }
}
