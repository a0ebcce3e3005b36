import MSBClient
import MSBCore

struct StartCommand: Subcommand {
    static let spec = CommandSpec(
        name: "start", summary: "Boot stopped sandboxes with their saved config",
        usage: "NAME [NAME...]", options: [], minPositionals: 1, maxPositionals: nil,
        positionalCompletion: .sandboxName, examples: ["msb start web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        try forEachName(arguments.positionals, context) { (name: String) throws(MSBError) in
            // A stopped sandbox's dependencies start first (a running one is left as it is).
            let backend = context.backend
            let info = try backend.inspect(name)
            if ![.running, .starting, .paused].contains(info.status) {
                try backend.startDependencies(of: info.config) { (dependency: SandboxInfo) throws(MSBError) in _ = try backend.start(dependency.name) }
            }
            context.write(try backend.start(name).name + "\n")
        }
    }
}
