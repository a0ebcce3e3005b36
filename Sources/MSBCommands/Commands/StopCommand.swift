import MSBClient
import MSBCore

struct StopCommand: Subcommand {
    static let spec = CommandSpec(
        name: "stop", summary: "Stop sandboxes (the guest syncs and powers off)",
        usage: "[OPTIONS] NAME [NAME...]",
        options: [OptionSpec(long: "force", short: "f", valueName: nil, help: "Kill the VM at once instead of a graceful stop")],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .sandboxName,
        examples: ["msb stop web", "msb stop --force web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let force = arguments.flag("force")
        return try forEachName(arguments.positionals, context) { (name: String) throws(MSBError) in
            context.write(try context.backend.stop(name, force: force).name + "\n")
        }
    }
}
