import MSBCore
import MSBOS
import MSBProtocol

/// What a stream to a sandbox's supervisor is opened for; named in errors ("failed to exec").
package enum SupervisorStreamPurpose: String, Sendable {
    case exec
    case repl

    package var action: String { self == .exec ? "exec" : "run code" }
}

/// A backend whose exec and code REPL reach the sandbox's supervisor as a framed byte
/// stream: a Unix socket on this host, an upgraded HTTP connection through a server.
/// Both then run the very same `ExecClient` / `ReplClient`.
package protocol SupervisorStreamBackend: SandboxBackend {
    /// A connected socket speaking MSBProtocol to the supervisor; the caller closes it.
    func openSupervisorStream(_ name: String, purpose: SupervisorStreamPurpose) throws(MSBError) -> Int32
}

extension SupervisorStreamBackend {
    package func exec(_ name: String, _ command: ExecParameters, io: ExecIO) throws(MSBError) -> ExecOutcome {
        guard !command.argv.isEmpty else {
            throw MSBError(.invalidArgument, "no command given", hint: "put the command after '--', e.g. msb exec \(name) -- uname -a")
        }
        let fd = try openSupervisorStream(name, purpose: .exec)
        return try ExecClient(fd: fd).run(ExecRequest(parameters: command, attachStdin: io.stdinFd != nil), io: io)
    }

    package func runCode(_ name: String, language: String, code: String, timeoutMilliseconds: UInt64?, interruptFd: Int32?,
                         stdout: ([UInt8]) -> Void, stderr: ([UInt8]) -> Void) throws(MSBError) -> ReplOutcome {
        let fd = try openSupervisorStream(name, purpose: .repl)
        return try ReplClient.run(fd: fd, language: language, code: code, timeoutMilliseconds: timeoutMilliseconds,
                                  interruptFd: interruptFd, stdout: stdout, stderr: stderr)
    }
}
