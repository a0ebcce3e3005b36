import MSBCore
import MSBOS
import MSBProtocol

/// What a stream to a sandbox's supervisor is opened for; named in errors ("failed to exec").
package enum SupervisorStreamPurpose: String, Sendable {
    case exec
    case repl
    case files

    package var action: String {
        switch self {
        case .exec: "exec"
        case .repl: "run code"
        case .files: "reach its files"
        }
    }
}

/// A backend whose exec and code REPL reach the sandbox's supervisor as a framed byte
/// stream: a Unix socket on this host, an upgraded HTTP connection through a server.
/// Both then run the very same `SupervisorConnection`.
package protocol SupervisorStreamBackend: SandboxBackend {
    /// A connected socket speaking MSBProtocol to the supervisor; the caller closes it.
    func openSupervisorStream(_ name: String, purpose: SupervisorStreamPurpose) throws(MSBError) -> Int32
}

extension SupervisorStreamBackend {
    /// A typed connection to the sandbox's supervisor.
    package func connect(_ name: String, purpose: SupervisorStreamPurpose) throws(MSBError) -> SupervisorConnection {
        SupervisorConnection(fd: try openSupervisorStream(name, purpose: purpose))
    }

    /// Starts a command and returns its session, for callers that drive the I/O themselves.
    package func openExec(_ name: String, _ command: ExecParameters, attachStdin: Bool) throws(MSBError) -> ExecSession {
        guard !command.argv.isEmpty else {
            throw MSBError(.invalidArgument, "no command given", hint: "put the command after '--', e.g. msb exec \(name) -- uname -a")
        }
        return try connect(name, purpose: .exec).exec(ExecRequest(parameters: command, attachStdin: attachStdin))
    }

    package func runCode(_ name: String, language: String, code: String, timeoutMilliseconds: UInt64?, interruptFd: Int32?,
                         stdout: ([UInt8]) -> Void, stderr: ([UInt8]) -> Void) throws(MSBError) -> ReplOutcome {
        try connect(name, purpose: .repl).runCode(language: language, code: code, timeoutMilliseconds: timeoutMilliseconds,
                                                  interruptFd: interruptFd, stdout: stdout, stderr: stderr)
    }
}
