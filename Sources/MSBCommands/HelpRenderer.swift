import MSBClient
import MSBCore
/// Renders `msb --help` and `msb CMD --help` from the command table.
package enum HelpRenderer {
    package static func overview() -> String {
        var text = """
            msb — run untrusted code in lightweight Linux microVM sandboxes

            Usage: msb [--server URL [--namespace NS]] <command> [options]

            Commands:

            """
        let width = CommandTable.visibleSpecs.map(\.name.count).max() ?? 0
        for spec in CommandTable.visibleSpecs {
            text += "  " + spec.name.padding(width) + "   " + spec.summary + "\n"
        }
        let globals = CommandTable.globalOptions.map { ($0.synopsis, $0.help) } + [("-h, --help", "Show help"), ("-v, --version", "Show the version")]
        let optionWidth = globals.map(\.0.count).max() ?? 0
        text += "\nOptions:\n" + globals.map { "  " + $0.0.padding(optionWidth) + "   " + $0.1 + "\n" }.joined()
        text += """

            Run 'msb help <command>' or 'msb <command> --help' for a command's options.
            Environment: MSB_HOME (state, default ~/.msb), MSB_ACCEL (auto|kvm|tcg), MSB_ARTIFACTS (guest kernel),
            MSB_SERVER_URL, MSB_API_KEY and MSB_NAMESPACE (remote mode: every command runs on that server).

            """
        return text
    }

    package static func help(for spec: CommandSpec) -> String {
        var text = "\(spec.summary)\n\nUsage: msb \(spec.name) \(spec.usage)\n"
        let options = spec.allOptions
        if !options.isEmpty {
            text += "\nOptions:\n"
            let width = options.map(\.synopsis.count).max() ?? 0
            for option in options {
                text += "  " + option.synopsis.padding(width) + "   " + option.help + "\n"
            }
        }
        if !spec.examples.isEmpty {
            text += "\nExamples:\n"
            for example in spec.examples { text += "  \(example)\n" }
        }
        return text
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
