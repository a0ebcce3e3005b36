import Foundation
import Testing

/// The committed completion scripts load in real bash, zsh and fish and offer the
/// subcommands (and, through `msb _complete`, sandbox names).
@Suite struct CompletionTests {
    static let completions = MSBHarness.repoRoot + "/completions"

    func shell(_ program: String, _ script: String) throws -> MSBResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program, "-c", script]
        var env = MSBHarness.environment()
        env["PATH"] = (MSBHarness.binary as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "")
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return MSBResult(status: process.terminationStatus, stdout: data, stderr: String(decoding: errors, as: UTF8.self))
    }

    let commands = ["create", "start", "exec", "shell", "run", "ls", "metrics", "stop", "rm", "completion"]

    @Test func bash() throws {
        let sandbox = SharedSandbox.name  // booted before the shell asks for names
        let result = try shell("bash", """
            source \(Self.completions)/msb.bash || exit 9
            COMP_WORDS=(msb ""); COMP_CWORD=1; _msb; echo "${COMPREPLY[*]}"
            COMP_WORDS=(msb exec ""); COMP_CWORD=2; _msb; echo "${COMPREPLY[*]}"
            """)
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        let lines = result.out.split(separator: "\n")
        for command in commands { #expect(lines.first?.split(separator: " ").contains(Substring(command)) == true) }
        #expect(lines.count == 2 && lines[1].split(separator: " ").contains(Substring(sandbox)))
    }

    @Test func zsh() throws {
        let result = try shell("zsh", """
            fpath=(\(Self.completions) $fpath)
            autoload -U compinit && compinit -u || exit 9
            [[ $_comps[msb] == _msb ]] || exit 8
            autoload +X _msb || exit 7
            zsh -n \(Self.completions)/_msb || exit 6
            print -l ${(f)"$(functions _msb)"} | grep -o "'[a-z]*:" | tr -d "':"
            """)
        #expect(result.status == 0, "\(result.stderr)")
        for command in commands { #expect(result.out.split(separator: "\n").contains(Substring(command))) }
    }

    @Test func fish() throws {
        let sandbox = SharedSandbox.name  // booted before the shell asks for names
        let result = try shell("fish", """
            source \(Self.completions)/msb.fish; or exit 9
            complete -C'msb '
            echo ---
            complete -C'msb exec '
            """)
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        let parts = result.out.components(separatedBy: "---\n")
        let offered = parts[0].split(separator: "\n").map { $0.split(separator: "\t").first.map(String.init) ?? "" }
        for command in commands { #expect(offered.contains(command)) }
        #expect(parts.count == 2 && parts[1].contains(sandbox))
    }
}
