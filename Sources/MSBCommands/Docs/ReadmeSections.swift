import MSBClient
import MSBCore

/// The parts of README.md that the command table generates: the list of commands and the
/// per-command option tables. Each lies between `<!-- BEGIN generated: KEY -->` and
/// `<!-- END generated: KEY -->`, where KEY is `commands` or `options COMMAND`;
/// `msb _readme` (scripts/generate-docs.sh) rewrites them and a test fails when they drift.
package enum ReadmeSections {
    /// One generated region of a README: its key and the lines between its markers.
    package struct Region: Equatable, Sendable {
        package var key: String
        package var content: String
    }

    static let beginPrefix = "<!-- BEGIN generated: "
    static let markerSuffix = " -->"

    static func begin(_ key: String) -> String { beginPrefix + key + markerSuffix }
    static func end(_ key: String) -> String { "<!-- END generated: " + key + markerSuffix }

    /// What the region `key` must hold; an unknown key is an error naming it.
    package static func content(for key: String) throws(MSBError) -> String {
        if key == "commands" { return commandList() }
        let words = key.split(separator: " ")
        guard words.count == 2, words[0] == "options", let spec = CommandTable.visibleSpecs.first(where: { $0.name == words[1] }) else {
            throw MSBError(.invalidArgument, "README.md names an unknown generated section '\(key)'",
                           hint: "use 'commands' or 'options COMMAND' with a command of 'msb --help'")
        }
        return optionTable(for: spec)
    }

    /// The usage block: synopsis and one line per command, as `msb --help` lists them.
    static func commandList() -> String {
        let specs = CommandTable.visibleSpecs
        let width = specs.map(\.name.count).max() ?? 0
        return "```\nmsb [--server URL [--namespace NS]] <command> [options]\n\n"
            + specs.map { "  " + $0.name.padding(width) + "   " + $0.summary + "\n" }.joined() + "```\n"
    }

    /// A markdown table of the command's options (`--help` left out: every command has it).
    static func optionTable(for spec: CommandSpec) -> String {
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
        var table = "| option | meaning |\n|---|---|\n"
        for option in spec.options {
            let names = (option.short.map { "-\($0), " } ?? "") + "--" + option.long + (option.valueName.map { " " + $0 } ?? "")
            table += "| `\(cell(names))` | \(cell(option.documentation)) |\n"
        }
        return table
    }

    /// The key of a BEGIN marker line, nil for any other line.
    static func beginKey(_ line: Substring) -> String? {
        guard line.hasPrefix(beginPrefix), line.hasSuffix(markerSuffix) else { return nil }
        return String(line.dropFirst(beginPrefix.count).dropLast(markerSuffix.count))
    }

    /// The generated regions of `readme`, in order. Refuses a BEGIN without its END.
    package static func regions(in readme: String) throws(MSBError) -> [Region] {
        var regions: [Region] = []
        var open: Region?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            if var region = open {
                if line == end(region.key) {
                    regions.append(region)
                    open = nil
                } else {
                    region.content += String(line) + "\n"
                    open = region
                }
            } else if let key = beginKey(line) {
                open = Region(key: key, content: "")
            }
        }
        if let open {
            throw MSBError(.invalidArgument, "README.md: '\(begin(open.key))' has no '\(end(open.key))'")
        }
        return regions
    }

    /// `readme` with every generated region rewritten from the command table.
    package static func regenerated(_ readme: String) throws(MSBError) -> String {
        _ = try regions(in: readme)  // every region is closed
        var output = ""
        var skipping: String?
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            let newline = index < lines.count - 1 ? "\n" : ""
            if let key = skipping {
                guard line == end(key) else { continue }
                skipping = nil
                output += String(line) + newline
            } else if let key = beginKey(line) {
                output += String(line) + "\n" + (try content(for: key))
                skipping = key
            } else {
                output += String(line) + newline
            }
        }
        return output
    }
}
