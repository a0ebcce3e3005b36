import Foundation
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol

/// What a subcommand works with: the backend, the environment, and the output streams.
package final class CommandContext {
    package let environment: [String: String]
    private var makeBackend: () -> any SandboxBackend
    private var backendInstance: (any SandboxBackend)?
    /// Where a command's results and its messages go: fds 1 and 2, or a test's recorder.
    private let standardOutput: (String) -> Void
    private let standardError: (String) -> Void
    /// Raw bytes for stdout (`msb fs cat`); false when they could not be written (a closed pipe).
    private let rawOutput: ([UInt8]) -> Bool
    /// Where commands that take data read it from (`msb fs write`): fd 0, or a test's pipe.
    package let standardInputFd: Int32

    package init(environment: [String: String] = ProcessInfo.processInfo.environment,
                 makeBackend: (() -> any SandboxBackend)? = nil,
                 standardOutput: ((String) -> Void)? = nil, standardError: ((String) -> Void)? = nil,
                 standardInputFd: Int32 = 0) {
        self.environment = environment
        let errors = standardError ?? { text in try? FileDescriptorIO.writeAll(2, Array(text.utf8)) }
        self.standardOutput = standardOutput ?? { text in try? FileDescriptorIO.writeAll(1, Array(text.utf8)) }
        if let standardOutput {
            rawOutput = { bytes in standardOutput(String(decoding: bytes, as: UTF8.self)); return true }
        } else {
            rawOutput = { bytes in (try? FileDescriptorIO.writeAll(1, bytes)) != nil }
        }
        self.standardInputFd = standardInputFd
        self.standardError = errors
        let env = environment
        self.makeBackend = makeBackend ?? {
            LocalBackend(paths: MSBPaths(environment: env), notice: { errors($0 + "\n") })
        }
    }

    /// Sends every sandbox operation to `endpoint` instead of this host.
    package func useRemote(_ endpoint: RemoteEndpoint) {
        makeBackend = { RemoteBackend(endpoint: endpoint) }
    }

    /// Created on first use so that `--help` and parse errors never touch state.
    package var backend: any SandboxBackend {
        if let backendInstance { return backendInstance }
        let backend = makeBackend()
        backendInstance = backend
        return backend
    }

    package func write(_ text: String) { standardOutput(text) }
    /// Bytes as they are; false when stdout is gone.
    package func writeBytes(_ bytes: [UInt8]) -> Bool { rawOutput(bytes) }

    /// One line on the command's stderr.
    package func writeError(_ line: String) { standardError(line + "\n") }

    /// Prints `error: MESSAGE` and the hint, and returns the error's documented exit code.
    package func report(_ error: MSBError) -> Int32 {
        writeError("error: \(Self.terminalSafe(error.description))")
        if let hint = error.hint { writeError("  → \(Self.terminalSafe(hint))") }
        return error.code.edges.exitCode
    }

    /// Messages can carry text from a guest, a registry or a server (an agent's failure
    /// message, a name): shown with control characters escaped.
    package static func terminalSafe(_ text: String) -> String { PrintableText.escaped(text) }

    package static func writeOut(_ text: String) {
        try? FileDescriptorIO.writeAll(1, Array(text.utf8))
    }

    package static func writeError(_ text: String) {
        try? FileDescriptorIO.writeAll(2, Array((text + "\n").utf8))
    }
}
