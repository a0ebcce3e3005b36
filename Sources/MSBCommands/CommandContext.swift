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

    package init(environment: [String: String] = ProcessInfo.processInfo.environment,
                 makeBackend: (() -> any SandboxBackend)? = nil) {
        self.environment = environment
        let env = environment
        self.makeBackend = makeBackend ?? {
            LocalBackend(paths: MSBPaths(environment: env), notice: { CommandContext.writeError($0) })
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

    package func write(_ text: String) { Self.writeOut(text) }

    package static func writeOut(_ text: String) {
        try? FileDescriptorIO.writeAll(1, Array(text.utf8))
    }

    package static func writeError(_ text: String) {
        try? FileDescriptorIO.writeAll(2, Array((text + "\n").utf8))
    }
}
