import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol

struct ShellCommand: Subcommand {
    static let spec = CommandSpec(
        name: "shell", summary: "Open a shell in a running sandbox (its create --shell, else /bin/sh)",
        usage: "[OPTIONS] NAME",
        options: [
            OptionSpec(long: "repl", short: nil, valueName: nil, help: "Line editor on the host (libedit) driving one persistent guest shell"),
            OptionSpec(long: "env", short: "e", valueName: "KEY=VALUE", help: "Set an environment variable (repeatable)", repeatable: true),
            OptionSpec(long: "workdir", short: "w", valueName: "DIR", help: "Starting directory in the guest"),
            OptionSpec(long: "detach-keys", short: nil, valueName: "KEYS", help: "Keys that detach from the terminal session (default: ctrl-])"),
        ],
        minPositionals: 1, maxPositionals: 1, positionalCompletion: .sandboxName,
        examples: ["msb shell web", "msb shell web --repl", "printf 'cd /tmp\\npwd\\n' | msb shell web"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let name = arguments.positionals[0]
        try InputParsing.validateName(name)
        for item in arguments.allValues("env") { try InputParsing.validateEnvironment(item) }
        let environment = arguments.allValues("env")
        let workdir = try arguments.value("workdir").map { (dir: String) throws(MSBError) in try CreateCommand.validatedWorkdir(dir) } ?? ""
        // The sandbox's own shell (`create --shell`, the SDKs' `shell`), else /bin/sh.
        let shell = try context.backend.inspect(name).config.shell ?? "/bin/sh"
        let interactive = isatty(0) != 0
        if interactive && !arguments.flag("repl") {
            var parameters = ExecParameters(argv: [shell], environment: ["PS1=\\h:\\w\\$ "] + environment,
                                            workingDirectory: workdir, tty: true)
            parameters.tty = true
            return try TerminalExec.run(context.backend, name: name, parameters, forceStdin: true,
                                        detachKeys: arguments.value("detach-keys") ?? TerminalExec.defaultDetachKeys)
        }
        let session = GuestShellSession { fd, bytes in try? FileDescriptorIO.writeAll(fd, bytes) }
        try session.start(backend: context.backend, name: name, shell: shell, environment: environment, workingDirectory: workdir)
        if interactive {
            let paths = MSBPaths(environment: context.environment)
            return try repl(session, name: name, historyPath: paths.home + "/history/\(name).shell")
        }
        return try lines(session)
    }

    /// Not a terminal: run each line of stdin, no prompt; the last line's status is ours.
    static func lines(_ session: GuestShellSession) throws(MSBError) -> Int32 {
        var status: Int32 = 0
        while let line = readLine(strippingNewline: true) {
            guard let result = try session.run(line) else {
                return session.exitCode ?? status
            }
            status = result.status
        }
        session.close()
        return status
    }

    /// On a terminal: libedit prompt showing the sandbox and the guest's working directory.
    static func repl(_ session: GuestShellSession, name: String, historyPath: String) throws(MSBError) -> Int32 {
        let editor = LineEditor(historyPath: historyPath)
        defer { editor.saveHistory() }
        var cwd = "/"
        if let first = try session.run("pwd >/dev/null") { cwd = first.workingDirectory }
        var status: Int32 = 0
        while true {
            switch editor.read(prompt: "\(name):\(cwd)# ") {
            case .interrupted:
                CommandContext.writeOut("\n")
                continue
            case .endOfInput:
                CommandContext.writeOut("\n")
                session.close()
                return 0
            case .line(let line):
                if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
                guard let result = try session.run(line, interruptFd: editor.interruptFd, takeInterrupt: { editor.takeInterrupt() }) else {
                    return session.exitCode ?? status
                }
                status = result.status
                cwd = result.workingDirectory
            }
        }
    }
}
