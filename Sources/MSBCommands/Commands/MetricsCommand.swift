import CMSBSys
import Foundation
import MSBClient
import MSBCore

struct MetricsCommand: Subcommand {
    static let spec = CommandSpec(
        name: "metrics", summary: "Show CPU, memory, disk and network use of sandboxes",
        usage: "[OPTIONS] [NAME...]",
        options: [
            OptionSpec(long: "all", short: "a", valueName: nil, help: "Every running sandbox (the default without names)"),
            OptionSpec(long: "watch", short: nil, valueName: nil, help: "Refresh every interval until Ctrl-C"),
            OptionSpec(long: "interval", short: nil, valueName: "DURATION", help: "Refresh interval for --watch (default: 1s)"),
            OptionSpec(long: "format", short: nil, valueName: "FORMAT", help: "Output format: table or json (default: table)",
                       completion: .values(["table", "json"])),
        ],
        maxPositionals: nil, positionalCompletion: .sandboxName,
        examples: ["msb metrics web", "msb metrics --all --watch", "msb metrics web --format json",
                   "msb metrics web --watch --format json --interval 2s"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let json = try OutputFormatting.wantsJSON(arguments)
        let intervalMilliseconds = try arguments.value("interval").map {
            (text: String) throws(MSBError) in try InputParsing.parseDurationMilliseconds(text)
        } ?? 1000
        for name in arguments.positionals { try InputParsing.validateName(name) }
        let names = arguments.positionals
        let single = names.count == 1 && !arguments.flag("all")

        func collect() throws(MSBError) -> [SandboxMetrics] {
            let targets = names.isEmpty || arguments.flag("all")
                ? try context.backend.list().filter { $0.status.guestRuns }.map(\.name)
                : names
            var rows: [SandboxMetrics] = []
            for name in targets { rows.append(try context.backend.metrics(name)) }
            return rows
        }

        guard arguments.flag("watch") else {
            let rows = try collect()
            context.write(json ? try jsonText(rows, single: single) + "\n" : table(rows))
            return 0
        }
        return try watch(interval: intervalMilliseconds, json: json, single: single, context: context, collect: collect)
    }

    /// Redraws in place on a terminal (cursor home, lines cleared to their ends, one
    /// write per frame, so nothing flickers); JSON lines or plain tables otherwise.
    static func watch(interval: UInt64, json: Bool, single: Bool, context: CommandContext,
                      collect: () throws(MSBError) -> [SandboxMetrics]) throws(MSBError) -> Int32 {
        var interruptPipe: [Int32] = [-1, -1]
        _ = msb_pipe(&interruptPipe, 1)
        _ = msb_sigint_install(interruptPipe[1])
        _ = msb_signal_to_pipe(SIGTERM, interruptPipe[1])
        let redraw = !json && isatty(1) != 0
        if redraw { context.write("\u{1b}[?25l\u{1b}[H\u{1b}[2J") }
        defer { if redraw { context.write("\u{1b}[?25h") } }
        while true {
            let rows = try collect()
            if json {
                context.write(try jsonText(rows, single: single) + "\n")
            } else if redraw {
                let lines = table(rows).split(separator: "\n", omittingEmptySubsequences: false)
                context.write("\u{1b}[H" + lines.map { $0 + "\u{1b}[K" }.joined(separator: "\n") + "\u{1b}[J")
            } else {
                context.write(table(rows) + "\n")
            }
            var p = pollfd(fd: interruptPipe[0], events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(min(interval, 3_600_000))) > 0 { return 0 }
        }
    }

    static func table(_ rows: [SandboxMetrics]) -> String {
        OutputFormatting.table(
            header: ["NAME", "STATUS", "CPU%", "MEM(MiB)", "MEM-LIMIT", "DISK", "NET-RX", "NET-TX", "UPTIME"],
            rows: rows.map { m in
                [m.name, m.status.rawValue,
                 m.cpuPercent.map { String(format: "%.1f%%", $0) } ?? "-",
                 m.memoryUsedMiB.map(String.init) ?? "-",
                 String(m.memoryLimitMiB),
                 m.diskUsedBytes.map(OutputFormatting.bytes) ?? "-",
                 m.networkReceivedBytes.map(OutputFormatting.bytes) ?? "-",
                 m.networkSentBytes.map(OutputFormatting.bytes) ?? "-",
                 m.uptimeSeconds.map(OutputFormatting.duration) ?? "-"]
            })
    }

    static func jsonText(_ rows: [SandboxMetrics], single: Bool) throws(MSBError) -> String {
        let objects = rows.map { RemoteWire.Metrics($0, detail: true) }
        if single, let only = objects.first { return try OutputFormatting.json(only) }
        return try OutputFormatting.json(objects)
    }
}
