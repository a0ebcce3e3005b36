/// Renders `msb --help` and `msb CMD --help` from the command table.
package enum HelpRenderer {
    package static func overview() -> String {
        var text = """
            msb — run untrusted code in lightweight Linux microVM sandboxes

            Usage: msb <command> [options]

            Commands:

            """
        let width = CommandTable.visibleSpecs.map(\.name.count).max() ?? 0
        for spec in CommandTable.visibleSpecs {
            text += "  " + spec.name.padding(width) + "   " + spec.summary + "\n"
        }
        text += """

            Options:
              -h, --help      Show help
              -v, --version   Show the version

            Run 'msb help <command>' or 'msb <command> --help' for a command's options.
            Environment: MSB_HOME (state, default ~/.msb), MSB_ACCEL (auto|kvm|tcg), MSB_ARTIFACTS (guest kernel).

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
