import Foundation
import MSBClient
import MSBCore

/// Tables, JSON and times the way the CLI prints them.
enum OutputFormatting {
    /// The `--format` option shared by ls, metrics and image ls: true for json.
    static func wantsJSON(_ arguments: ParsedArguments) throws(MSBError) -> Bool {
        let format = arguments.value("format") ?? "table"
        guard format == "table" || format == "json" else {
            throw MSBError(.invalidArgument, "invalid format '\(format)'", hint: "use table or json")
        }
        return format == "json"
    }

    static func table(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in i == cells.count - 1 ? cell : cell.padding(widths[i]) }
                .joined(separator: "   ") + "\n"
        }
        return line(header) + rows.map(line).joined()
    }

    /// Sorted keys; `pretty` indents it for people (`msb inspect`), else one line.
    static func json<T: Encodable>(_ value: T, pretty: Bool = false) throws(MSBError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if pretty { encoder.outputFormatting.insert(.prettyPrinted) }
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw MSBError(.internalError, "cannot encode JSON output")
        }
    }

    /// 1.5MB, 312KB, 12B (decimal units, like docker stats).
    static func bytes(_ count: Int) -> String {
        let units: [(Double, String)] = [(1e9, "GB"), (1e6, "MB"), (1e3, "KB")]
        for (size, unit) in units where Double(count) >= size {
            return String(format: "%.1f%@", Double(count) / size, unit)
        }
        return "\(count)B"
    }

    /// 45s, 3m12s, 2h05m.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }

    static func iso8601(_ date: Date) -> String { RemoteWire.iso8601(date) }

    /// "5 seconds ago", "3 minutes ago", like docker ps.
    static func relative(_ date: Date, now: Date) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        func unit(_ n: Int, _ name: String) -> String { "\(n) \(name)\(n == 1 ? "" : "s") ago" }
        switch seconds {
        case ..<60: return unit(seconds, "second")
        case ..<3600: return unit(seconds / 60, "minute")
        case ..<86400: return unit(seconds / 3600, "hour")
        default: return unit(seconds / 86400, "day")
        }
    }
}
