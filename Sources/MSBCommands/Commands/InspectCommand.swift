import MSBClient
import MSBCore

/// `msb inspect NAME`: the sandbox's whole config and live state as one JSON object, the
/// shape `msb ls --format json` prints for each sandbox and `sandbox.inspect` returns.
struct InspectCommand: Subcommand {
    static let spec = CommandSpec(
        name: "inspect", summary: "Show a sandbox's config and state as JSON",
        usage: "NAME", options: [],
        minPositionals: 1, maxPositionals: 1, positionalCompletion: .sandboxName,
        examples: ["msb inspect web", "msb inspect web | jq -r .status"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let info = try context.backend.inspect(arguments.positionals[0])
        context.write(try OutputFormatting.json(RemoteWire.Sandbox(info), pretty: true) + "\n")
        return CLI.ExitCode.success
    }
}
