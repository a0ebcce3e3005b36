import MSBClient
import MSBCore

struct CompletionCommand: Subcommand {
    static let spec = CommandSpec(
        name: "completion", summary: "Print the shell completion script for bash, zsh or fish",
        usage: "SHELL", options: [], minPositionals: 1, maxPositionals: 1,
        positionalCompletion: .values(CompletionScripts.shells),
        examples: ["msb completion bash > /etc/bash_completion.d/msb", "msb completion fish > ~/.config/fish/completions/msb.fish"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        guard let script = CompletionScripts.script(for: arguments.positionals[0]) else {
            throw MSBError(.invalidArgument, "unsupported shell '\(arguments.positionals[0])'", hint: "use bash, zsh or fish")
        }
        context.write(script)
        return 0
    }
}

/// Hidden: words for completion scripts (sandbox or image names), one per line.
struct CompleteCommand: Subcommand {
    static let spec = CommandSpec(
        name: "_complete", summary: "Print completion candidates (internal)", usage: "sandboxes|images", options: [],
        minPositionals: 1, maxPositionals: 1, hidden: true)

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        switch arguments.positionals[0] {
        case "sandboxes": context.write(try context.backend.list().map { $0.name + "\n" }.joined())
        case "images":
            context.write(try context.backend.listImages().map { $0.name + "\n" }.joined())
        default: throw MSBError(.invalidArgument, "unknown completion kind '\(arguments.positionals[0])'")
        }
        return 0
    }
}

/// Hidden: prints the man page (man/msb.1 is this output, checked by a test).
struct ManPageCommand: Subcommand {
    static let spec = CommandSpec(name: "_manpage", summary: "Print the man page (internal)", usage: "", options: [], hidden: true)

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        context.write(ManPage.render())
        return 0
    }
}
