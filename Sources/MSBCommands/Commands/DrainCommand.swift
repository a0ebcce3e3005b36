import MSBClient
import MSBCore

/// `msb drain NAME...`: each sandbox takes no new commands (status `draining`) and stops by
/// itself once the commands already running in it end; by default this waits for that
/// and prints each name when it has stopped, like `msb stop`. Several sandboxes drain at
/// the same time. Works the same on a server (`sandbox.drain`, then `sandbox.wait`).
struct DrainCommand: Subcommand {
    static let spec = CommandSpec(
        name: "drain", summary: "Refuse new commands, let running ones finish, then stop",
        usage: "[OPTIONS] NAME [NAME...]",
        options: [
            OptionSpec(long: "timeout", short: nil, valueName: "DURATION", help: "Stop whatever still runs after this long, e.g. 5m",
                       details: "after this long, the commands still running end with a graceful stop, e.g. `5m` (default: no limit)"),
            OptionSpec(long: "no-wait", short: nil, valueName: nil, help: "Return once draining; 'msb wait' waits for the end"),
        ],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .sandboxName,
        examples: ["msb drain web", "msb drain --timeout 10m web worker", "msb drain --no-wait web && msb wait web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        var timeoutSeconds: Double?
        if let text = arguments.value("timeout") { timeoutSeconds = Double(try InputParsing.parseDurationMilliseconds(text)) / 1000 }
        for name in arguments.positionals { try InputParsing.validateName(name) }
        var draining: [String] = []
        let started = try forEachName(arguments.positionals, context) { (name: String) throws(MSBError) in
            _ = try context.backend.drain(name, timeoutSeconds: timeoutSeconds)
            draining.append(name)
        }
        if arguments.flag("no-wait") {
            for name in draining { context.write(name + "\n") }
            return started
        }
        var code = started
        for name in draining {
            let outcome: Int32
            do { outcome = try WaitCommand.waitForOne(name, deadline: nil, timeoutSeconds: nil, context) } catch {
                code = max(code, context.report(error))
                continue
            }
            if outcome == CLI.ExitCode.success { context.write(name + "\n") }
            code = max(code, outcome)
        }
        return code
    }
}
