import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol

struct ReplCommand: Subcommand {
    static let spec = CommandSpec(
        name: "repl", summary: "Evaluate code in a sandbox's persistent python or node interpreter",
        usage: "[OPTIONS] NAME",
        options: [
            OptionSpec(long: "lang", short: "l", valueName: "LANG", help: "python or node (default: the image's language, else python)",
                       completion: .values(["python", "node"])),
            OptionSpec(long: "no-tty", short: nil, valueName: nil, help: "Evaluate all of stdin once, even on a terminal"),
            OptionSpec(long: "timeout", short: nil, valueName: "DURATION", help: "Interrupt an evaluation after this long, e.g. 30s"),
        ],
        minPositionals: 1, maxPositionals: 1, positionalCompletion: .sandboxName,
        examples: ["msb repl py", "msb repl py --lang node", "echo 'x = 41' | msb repl py --no-tty"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let name = arguments.positionals[0]
        try InputParsing.validateName(name)
        let timeout = try arguments.value("timeout").map { (text: String) throws(MSBError) in
            try InputParsing.parseDurationMilliseconds(text)
        }
        let language: String
        if let requested = arguments.value("lang") {
            guard ["python", "node", "nodejs", "javascript"].contains(requested.lowercased()) else {
                throw MSBError(.invalidArgument, "unsupported language '\(requested)'", hint: "use python or node")
            }
            language = requested.lowercased() == "python" ? "python" : "node"
        } else {
            language = try context.backend.inspect(name).config.image == "node" ? "node" : "python"
        }
        let write: ([UInt8], Int32) -> Void = { bytes, fd in try? FileDescriptorIO.writeAll(fd, bytes) }
        if arguments.flag("no-tty") || isatty(0) == 0 {
            var code: [UInt8] = []
            while let chunk = try? FileDescriptorIO.readSome(0), !chunk.isEmpty { code += chunk }
            let interrupts = try TerminalExec.signalPipe([SIGINT, SIGTERM])
            defer { interrupts.restore() }  // also keeps the pipe alive until the evaluation is over
            let outcome = try context.backend.runCode(
                name, language: language, code: String(decoding: code, as: UTF8.self), timeoutMilliseconds: timeout,
                interruptFd: interrupts.readFd, stdout: { write($0, 1) }, stderr: { write($0, 2) })
            return report(outcome)
        }
        let paths = MSBPaths(environment: context.environment)
        let editor = LineEditor(historyPath: paths.home + "/history/\(name).\(language)")
        defer { editor.saveHistory() }
        CommandContext.writeOut("msb \(language) REPL in sandbox \(name); Ctrl-D exits, Ctrl-C interrupts\n")
        while true {
            guard let code = readBlock(editor, language: language) else {
                CommandContext.writeOut("\n")
                return 0
            }
            if code.isEmpty { continue }
            _ = report(try context.backend.runCode(
                name, language: language, code: code, timeoutMilliseconds: timeout, interruptFd: editor.interruptFd,
                stdout: { write($0, 1) }, stderr: { write($0, 2) }))
        }
    }

    private static func report(_ outcome: ReplOutcome) -> Int32 {
        if !outcome.message.isEmpty { CommandContext.writeError("error: \(outcome.message)") }
        return outcome.status == "success" ? 0 : 1
    }

    /// Reads one input: a line, or a block that continues while brackets are open or
    /// (python) after a line ending in ':' until an empty line. nil on Ctrl-D.
    static func readBlock(_ editor: LineEditor, language: String) -> String? {
        var lines: [String] = []
        var prompt = language == "python" ? ">>> " : "> "
        while true {
            switch editor.read(prompt: prompt) {
            case .endOfInput:
                return lines.isEmpty ? nil : lines.joined(separator: "\n")
            case .interrupted:
                CommandContext.writeOut("\n")
                return ""
            case .line(let line):
                if !lines.isEmpty && line.trimmingCharacters(in: .whitespaces).isEmpty {
                    return lines.joined(separator: "\n")
                }
                lines.append(line)
                // A python block, once open, ends only at an empty line.
                let text = lines.joined(separator: "\n")
                if !needsMore(text, language: language) && (lines.count == 1 || language != "python") {
                    return text
                }
                prompt = "... "
            }
        }
    }

    /// Open brackets, or a python block opener: more lines belong to this input.
    static func needsMore(_ text: String, language: String) -> Bool {
        var depth = 0
        for character in text {
            if "([{".contains(character) { depth += 1 }
            if ")]}".contains(character) { depth -= 1 }
        }
        if depth > 0 { return true }
        let last = text.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return language == "python" && (last.hasSuffix(":") || last.hasSuffix("\\"))
    }
}
