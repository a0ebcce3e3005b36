import MSBClient
import MSBCore

struct PortCommand: Subcommand {
    static let spec = CommandSpec(
        name: "port", summary: "List a sandbox's published ports",
        usage: "[OPTIONS] NAME",
        options: [OptionSpec(long: "format", short: nil, valueName: "FORMAT", help: "Output format: table or json (default: table)",
                             completion: .values(["table", "json"]))],
        minPositionals: 1, maxPositionals: 1, positionalCompletion: .sandboxName,
        examples: ["msb port api", "msb port api --format json"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let json = try OutputFormatting.wantsJSON(arguments)
        let name = arguments.positionals[0]
        try InputParsing.validateName(name)
        let ports = try context.backend.inspect(name).config.network?.publishedPorts ?? []
        context.write(try text(ports, json: json))
        return 0
    }

    /// Like `docker port`: one `GUEST/PROTO -> HOSTIP:HOST` line per publication, nothing
    /// when there is none; JSON is always an array.
    static func text(_ ports: [PublishedPort], json: Bool) throws(MSBError) -> String {
        if json { return try OutputFormatting.json(ports.map(RemoteWire.Port.init)) + "\n" }
        return ports.map { $0.description + "\n" }.joined()
    }
}
