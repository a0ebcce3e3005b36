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

    package init(environment: [String: String] = ProcessInfo.processInfo.environment,
                 makeBackend: (() -> any SandboxBackend)? = nil,
                 standardOutput: ((String) -> Void)? = nil, standardError: ((String) -> Void)? = nil) {
        self.environment = environment
        let errors = standardError ?? { text in try? FileDescriptorIO.writeAll(2, Array(text.utf8)) }
        self.standardOutput = standardOutput ?? { text in try? FileDescriptorIO.writeAll(1, Array(text.utf8)) }
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

    /// One line on the command's stderr.
    package func writeError(_ line: String) { standardError(line + "\n") }

    /// Prints `error: MESSAGE` and the hint, and returns the error's documented exit code.
    package func report(_ error: MSBError) -> Int32 {
        writeError("error: \(Self.terminalSafe(error.description))")
        if let hint = error.hint { writeError("  → \(Self.terminalSafe(hint))") }
        return error.code.edges.exitCode
    }

    /// Messages can carry text from a guest, a registry or a server (an agent's failure
    /// message, a name): control characters are shown escaped so none of them can move the
    /// cursor, retitle the window or hide the rest of the line.
    package static func terminalSafe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var safe = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                safe += scalar.value < 0x100 ? "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                    : "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                safe.unicodeScalars.append(scalar)
            }
        }
        return safe
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || (0x202a...0x202e).contains(scalar.value)
            || (0x2066...0x2069).contains(scalar.value)
    }

    package static func writeOut(_ text: String) {
        try? FileDescriptorIO.writeAll(1, Array(text.utf8))
    }

    package static func writeError(_ text: String) {
        try? FileDescriptorIO.writeAll(2, Array((text + "\n").utf8))
    }
}
