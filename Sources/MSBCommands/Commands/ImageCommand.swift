import Foundation
import MSBClient
import MSBCore

struct ImageCommand: Subcommand {
    static let spec = CommandSpec(
        name: "image", summary: "Build, list, warm and remove images",
        usage: "ls|build|warm|rm|prune [OPTIONS] [NAME...]",
        options: [
            OptionSpec(long: "format", short: nil, valueName: "FORMAT", help: "ls output format: table or json (default: table)",
                       completion: .values(["table", "json"])),
            OptionSpec(long: "quiet", short: "q", valueName: nil, help: "ls: print names only"),
            OptionSpec(long: "force", short: "f", valueName: nil, help: "build: rebuild even if the image exists; rm: remove it even if sandboxes use it"),
            OptionSpec(long: "memory", short: "m", valueName: "SIZE", help: "warm: the memory of the sandboxes to warm for (default: 512M)"),
            OptionSpec(long: "cpus", short: nil, valueName: "N", help: "warm: their virtual CPUs (default: 1)"),
        ],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .image,
        examples: ["msb image build python", "msb image build node", "msb image ls", "msb image warm python --memory 1G", "msb image rm node"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let backend = context.backend
        let action = arguments.positionals[0]
        let names = Array(arguments.positionals.dropFirst())
        switch action {
        case "ls", "list":
            guard names.isEmpty else { throw MSBError(.invalidArgument, "'msb image ls' takes no names") }
            return try list(backend.listImages(), arguments, context)
        case "build":
            guard !names.isEmpty else {
                throw MSBError(.invalidArgument, "'msb image build' needs an image name", hint: "buildable images: node, python")
            }
            return try forEachName(names, context) { (name: String) throws(MSBError) in
                _ = try backend.buildImage(name, force: arguments.flag("force")) { CommandContext.writeError("msb: " + $0) }
                context.write(name + "\n")
            }
        case "warm":
            guard !names.isEmpty else { throw MSBError(.invalidArgument, "'msb image warm' needs an image name") }
            return try forEachName(names, context) { (name: String) throws(MSBError) in
                try backend.warmTemplate(image: name, memoryMiB: try arguments.value("memory").map(InputParsing.parseMemoryMiB),
                                         cpus: try arguments.value("cpus").map(InputParsing.parseCPUs))
                context.write(name + "\n")
            }
        case "rm", "remove":
            guard !names.isEmpty else { throw MSBError(.invalidArgument, "'msb image rm' needs an image name") }
            return try forEachName(names, context) { (name: String) throws(MSBError) in
                try backend.removeImage(name, force: arguments.flag("force"))
                context.write(name + "\n")
            }
        case "prune":
            // Layers are only needed while pulling: drop the blob cache and leftovers of interrupted builds.
            let removed = try backend.pruneImages()
            context.write("removed \(removed) cached blobs, stale start templates and leftovers\n")
            return 0
        default:
            throw MSBError(.invalidArgument, "unknown image action '\(action)'", hint: "use ls, build, warm, rm or prune")
        }
    }


    static func list(_ images: [ImageInfo], _ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let json = try OutputFormatting.wantsJSON(arguments)
        if arguments.flag("quiet") {
            context.write(images.map { $0.name + "\n" }.joined())
        } else if json {
            context.write(try OutputFormatting.json(images.map(ImageJSON.init)) + "\n")
        } else {
            let now = Date()
            context.write(OutputFormatting.table(
                header: ["NAME", "DIGEST", "SIZE", "CREATED"],
                rows: images.map { image in
                    [image.name, image.digest.isEmpty ? "-" : String(image.digest.prefix(19)),
                     OutputFormatting.bytes(Int(image.sizeBytes)), OutputFormatting.relative(image.createdAt, now: now)]
                }))
        }
        return 0
    }
}

struct ImageJSON: Encodable {
    let name: String
    let kind: String
    let digest: String
    let size: Int64
    let created_at: String
    let source: String

    init(_ info: ImageInfo) {
        name = info.name
        kind = info.kind
        digest = info.digest
        size = info.sizeBytes
        created_at = OutputFormatting.iso8601(info.createdAt)
        source = info.source
    }
}
