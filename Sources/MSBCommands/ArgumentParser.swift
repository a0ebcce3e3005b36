import Foundation
import MSBClient
import MSBCore

/// The parsed words of one subcommand.
package struct ParsedArguments: Sendable {
    package var values: [String: [String]] = [:]
    package var flags: Set<String> = []
    package var positionals: [String] = []
    /// The guest command, for specs that take one.
    package var trailing: [String] = []

    package func value(_ long: String) -> String? { values[long]?.last }
    package func allValues(_ long: String) -> [String] { values[long] ?? [] }
    package func flag(_ long: String) -> Bool { flags.contains(long) }
}

/// A hand-rolled parser: `--opt value`, `--opt=value`, `-o value`, `-ovalue`, bundled
/// flags (`-fq`), `--` to end options, and errors that suggest the nearest option.
package enum ArgumentParser {
    package static func parse(_ words: [String], spec: CommandSpec) throws(MSBError) -> ParsedArguments {
        var parsed = ParsedArguments()
        var index = 0
        func usageError(_ message: String, hint: String? = nil) -> MSBError {
            MSBError(.invalidArgument, message, hint: hint ?? "run 'msb \(spec.name) --help' for usage")
        }
        func store(_ option: OptionSpec, value: String?) throws(MSBError) {
            if let value {
                if !option.repeatable && parsed.values[option.long] != nil {
                    throw usageError("option '--\(option.long)' given more than once")
                }
                parsed.values[option.long, default: []].append(value)
            } else {
                parsed.flags.insert(option.long)
            }
        }
        func takeValue(for option: OptionSpec) throws(MSBError) -> String {
            index += 1
            guard index < words.count else {
                throw usageError("option '--\(option.long)' needs a value (\(option.valueName ?? "VALUE"))")
            }
            return words[index]
        }

        while index < words.count {
            let word = words[index]
            if word == "--" {
                if spec.commandAfterPositionals != nil {
                    parsed.trailing = Array(words[(index + 1)...])
                } else {
                    parsed.positionals += words[(index + 1)...]
                }
                break
            }
            if word.hasPrefix("--") {
                let body = word.dropFirst(2)
                let name = String(body.prefix { $0 != "=" })
                let inlineValue = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
                guard let option = spec.option(long: name) else {
                    throw unknownOption("--\(name)", spec: spec)
                }
                if option.takesValue {
                    if let inlineValue {
                        try store(option, value: inlineValue)
                    } else {
                        try store(option, value: try takeValue(for: option))
                    }
                } else {
                    guard inlineValue == nil else { throw usageError("option '--\(name)' takes no value") }
                    try store(option, value: nil)
                }
            } else if word.hasPrefix("-") && word.count > 1 && !isNegativeNumber(word) {
                var letters = Array(word.dropFirst())
                while !letters.isEmpty {
                    let letter = letters.removeFirst()
                    guard let option = spec.option(short: letter) else { throw unknownOption("-\(letter)", spec: spec) }
                    if option.takesValue {
                        let rest = String(letters)
                        let value = rest.isEmpty ? try takeValue(for: option) : rest
                        try store(option, value: value)
                        letters = []
                    } else {
                        try store(option, value: nil)
                    }
                }
            } else {
                if let after = spec.commandAfterPositionals, parsed.positionals.count >= after {
                    parsed.trailing = Array(words[index...])
                    break
                }
                parsed.positionals.append(word)
            }
            index += 1
        }
        if parsed.flag("help") { return parsed }
        if parsed.positionals.count < spec.minPositionals {
            throw usageError("'msb \(spec.name)' needs \(spec.usage.replacingOccurrences(of: "[OPTIONS] ", with: ""))")
        }
        if let max = spec.maxPositionals, parsed.positionals.count > max {
            throw usageError("unexpected argument '\(parsed.positionals[max])' for 'msb \(spec.name)'")
        }
        return parsed
    }

    private static func isNegativeNumber(_ word: String) -> Bool {
        Double(word) != nil
    }

    static func unknownOption(_ word: String, spec: CommandSpec) -> MSBError {
        let candidates = spec.allOptions.map { "--\($0.long)" }
        let suggestion = nearest(word, in: candidates)
        let hint = suggestion.map { "did you mean '\($0)'? run 'msb \(spec.name) --help' for usage" }
            ?? "run 'msb \(spec.name) --help' for usage"
        return MSBError(.invalidArgument, "unknown option '\(word)' for 'msb \(spec.name)'", hint: hint)
    }

    /// The candidate within edit distance 2 (or sharing a prefix), if any.
    package static func nearest(_ word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word, $0)) }.sorted { $0.1 < $1.1 }
        if let best = scored.first, best.1 <= max(2, word.count / 3) { return best.0 }
        if word.count >= 3, let prefixed = candidates.first(where: { $0.hasPrefix(word) }) { return prefixed }
        return nil
    }

    package static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
