import CMSBSys
import Foundation
import MSBClient
import MSBCore

struct PullCommand: Subcommand {
    static let spec = CommandSpec(
        name: "pull", summary: "Pull an image from an OCI / Docker registry",
        usage: "[OPTIONS] REFERENCE",
        options: [
            OptionSpec(long: "insecure", short: nil, valueName: nil, help: "Use plain HTTP (a local registry without TLS)"),
        ],
        minPositionals: 1, maxPositionals: 1,
        examples: ["msb pull docker.io/library/alpine:3.20", "msb pull localhost:5000/team/tool:1.2 --insecure",
                   "MSB_REGISTRY_AUTH=user:password msb pull registry.example.com/private/app@sha256:…"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        // Progress on a terminal only; scripts get just the name.
        let showProgress = isatty(2) != 0
        let info = try context.backend.pullImage(
            arguments.positionals[0], insecure: arguments.flag("insecure"),
            credentials: context.environment["MSB_REGISTRY_AUTH"].flatMap { $0.isEmpty ? nil : $0 },
            progress: { line in if showProgress { CommandContext.writeError("msb: " + line) } })
        context.write(info.name + "\n")
        return 0
    }
}
