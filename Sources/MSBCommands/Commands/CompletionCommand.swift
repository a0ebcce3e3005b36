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
