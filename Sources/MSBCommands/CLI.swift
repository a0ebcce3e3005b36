import CMSBSys
import Foundation
import MSBClient
import MSBCore

/// Entry point shared by the `msb` executable and the tests: parses, dispatches, and
/// turns errors into `error: ...` / `  → hint` lines and documented exit codes.
package enum CLI {
    package static let version = "0.1.0"

    /// Exit codes (see man/msb.1). Exec and run pass the guest command's own code through.
    package enum ExitCode {
        package static let success: Int32 = 0
        package static let failure: Int32 = 1
        package static let usage: Int32 = 2
        /// `msb wait`: a sandbox crashed instead of stopping.
        package static let sandboxCrashed: Int32 = 4
        /// `--timeout` passed (exec and run: the guest command was killed; wait: gave up).
        package static let timedOut: Int32 = 124
    }

    package static func main(_ arguments: [String], context: CommandContext = CommandContext()) -> Int32 {
        _ = msb_signal_ignore(SIGPIPE)
        msb_unblock_signals()
        var words = arguments
        guard let firstWord = words.first else {
            context.write(HelpRenderer.overview())
            return ExitCode.usage
        }
        switch firstWord {
        case "-h", "--help":
            context.write(HelpRenderer.overview())
            return ExitCode.success
        case "-v", "--version":
            context.write("msb \(version)\n")
            return ExitCode.success
        default:
            break
        }
        words.removeFirst()
        let first: String
        var server: String?, namespace: String?, caCertificateFile: String?
        do throws(MSBError) {
            // Global options come before the command: msb --server URL --namespace NS ls
            var name = firstWord
            while let global = CommandTable.globalOption(matching: name) {
                let value: String
                if let eq = name.firstIndex(of: "=") {
                    value = String(name[name.index(after: eq)...])
                } else {
                    guard !words.isEmpty else {
                        throw MSBError(.invalidArgument, "option '--\(global.long)' needs a value", hint: "run 'msb --help' for usage")
                    }
                    value = words.removeFirst()
                }
                switch global.long {
                case "server": server = value
                case "cacert": caCertificateFile = value
                default: namespace = value
                }
                guard !words.isEmpty else {
                    throw MSBError(.invalidArgument, "no command given after '--\(global.long)'", hint: "run 'msb --help' for commands")
                }
                name = words.removeFirst()
            }
            first = name
        } catch {
            return context.report(error)
        }
        guard let command = CommandTable.command(named: first) else {
            let suggestion = ArgumentParser.nearest(first, in: CommandTable.visibleSpecs.map(\.name))
            let error = first.hasPrefix("-")
                ? MSBError(.invalidArgument, "unknown option '\(first)'", hint: "run 'msb --help' for usage")
                : MSBError(.invalidArgument, "unknown command '\(first)'",
                           hint: suggestion.map { "did you mean '\($0)'? run 'msb --help' for commands" } ?? "run 'msb --help' for commands")
            return context.report(error)
        }
        do {
            // Commands about this host itself never go to a server (a stray MSB_SERVER_URL
            // must not break `msb server start` or `msb completion`).
            if !CommandTable.hostOnlyCommands.contains(first),
               let endpoint = try RemoteEndpoint.fromEnvironment(context.environment, server: server, namespace: namespace,
                                                                 caCertificateFile: caCertificateFile) {
                context.useRemote(endpoint)
            }
            let parsed = try ArgumentParser.parse(words, spec: command.spec)
            if parsed.flag("help") {
                context.write(HelpRenderer.help(for: command.spec))
                return ExitCode.success
            }
            return try command.run(parsed, context)
        } catch {
            return context.report(error)
        }
    }
}
