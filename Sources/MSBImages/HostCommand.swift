import Foundation
import MSBCore
import MSBOS

/// Runs a host tool to completion and returns its stdout; failures carry its stderr.
enum HostCommand {
    @discardableResult
    static func run(_ argv: [String], what: String) throws(MSBError) -> String {
        guard FileManager.default.isExecutableFile(atPath: argv[0]) else {
            throw MSBError(.notFound, "\(argv[0]) is not installed", hint: "run scripts/setup.sh (it installs mmdebstrap and e2fsprogs)")
        }
        let result: CapturedRun
        do { result = try ChildProcess.run(SpawnSpec(argv[0], arguments: argv)) } catch {
            throw MSBError(.internalError, "cannot run \(what): \(error.reason)")
        }
        guard result.status.succeeded else {
            throw MSBError(.internalError, "\(what) failed (\(result.status)): \(result.errorSummary())")
        }
        return result.outputText
    }
}
