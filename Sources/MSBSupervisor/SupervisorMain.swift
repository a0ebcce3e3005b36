import Foundation
import MSBCore
import MSBOS
import MSBProtocol
import MSBVMM

/// The entry point of the per-sandbox supervisor process: `msb _supervise NAME`, spawned
/// detached by `LocalBackend` with its readiness pipe on fd 3. Not a CLI command: the
/// executable hands these arguments here before the CLI parses anything.
package enum SupervisorMain {
    package static let commandName = "_supervise"

    package static func run(_ arguments: [String]) -> Int32 {
        guard arguments.count == 1, let name = arguments.first else {
            try? FileDescriptorIO.writeAll(2, Array("usage: msb \(commandName) NAME (internal)\n".utf8))
            return 2
        }
        let paths = MSBPaths(environment: ProcessInfo.processInfo.environment)
        do {
            return try Supervisor(name: name, paths: paths, readyFd: 3).run()
        } catch {
            try? FileDescriptorIO.writeAll(2, Array("error: \(error.description)\n".utf8))
            return 1
        }
    }
}
