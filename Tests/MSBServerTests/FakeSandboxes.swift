import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBProtocol
@testable import MSBServer

/// Sandboxes in memory behind `SandboxHost(sandboxes:)`, so the SDK methods (exec, code,
/// metrics) run end to end through the dispatcher without a VM. Every named sandbox runs;
/// a command prints its arguments joined by spaces and exits 0; code is echoed back. Each
/// exec and code run is recorded with the namespace and timeout it arrived with.
final class FakeSandboxes: @unchecked Sendable {
    /// Running sandboxes by namespace.
    private let running: [String: [String]]
    private let lock = NSLock()
    private var recorded: [String] = []
    /// The supervisor's ends of the exec streams: kept open until the fake goes, so the
    /// session's request has somewhere to go.
    private var peers: [Int32] = []

    init(_ running: [String: [String]]) { self.running = running }

    /// The guest file system every fake sandbox shares, answering as the agent would.
    let disk = FakeGuestDisk()

    deinit { for fd in peers { close(fd) } }

    /// `ns/name exec ARGV timeout=MSms`, `ns/name code LANGUAGE timeout=MSms`, in order.
    var calls: [String] { lock.withLock { recorded } }

    /// A host whose SDK methods reach these sandboxes; everything else is the real thing.
    func host(home: String, limits: ServerLimits = ServerLimits()) -> SandboxHost {
        SandboxHost(paths: MSBPaths(environment: ["MSB_HOME": home]), limits: limits) { Backend(sandboxes: self, namespace: $0) }
    }

    fileprivate func record(_ call: String) { lock.withLock { recorded.append(call) } }
    fileprivate func keep(_ fd: Int32) { lock.withLock { peers.append(fd) } }

    fileprivate func names(in namespace: String) -> [String] { running[namespace] ?? [] }

    private struct Backend: SandboxBackend {
        let sandboxes: FakeSandboxes
        let namespace: String

        private func existing(_ name: String) throws(MSBError) -> SandboxInfo {
            guard sandboxes.names(in: namespace).contains(name) else { throw MSBError.sandboxNotFound(name) }
            return SandboxInfo(config: SandboxConfig(name: name), namespace: namespace, status: .running,
                               createdAt: Date(timeIntervalSince1970: 1_700_000_000))
        }

        private static func milliseconds(_ value: UInt64?) -> String { value.map { "\($0)ms" } ?? "none" }

        func list() throws(MSBError) -> [SandboxInfo] {
            var infos: [SandboxInfo] = []
            for name in sandboxes.names(in: namespace) { infos.append(try existing(name)) }
            return infos
        }
        func inspect(_ name: String) throws(MSBError) -> SandboxInfo { try existing(name) }
        /// Every sandbox's log is the same three lines; `maxBytes` takes its tail.
        func logs(_ name: String, maxBytes: Int) throws(MSBError) -> SandboxLog {
            _ = try existing(name)
            sandboxes.record("\(namespace)/\(name) logs \(maxBytes)")
            let bytes = Array("[msb] exec started\nhello\n[msb] exec exited with status 0\n".utf8)
            return SandboxLog(bytes: Array(bytes.suffix(maxBytes)), truncated: maxBytes < bytes.count)
        }
        func wait(_ name: String, timeoutSeconds: Double) throws(MSBError) -> SandboxInfo { try existing(name) }
        func drain(_ name: String, timeoutSeconds: Double?) throws(MSBError) -> SandboxInfo {
            sandboxes.record("\(namespace)/\(name) drain timeout=\(timeoutSeconds.map { "\($0)s" } ?? "none")")
            var info = try existing(name)
            info.status = .draining
            return info
        }
        func metrics(_ name: String) throws(MSBError) -> SandboxMetrics {
            _ = try existing(name)
            return SandboxMetrics(name: name, namespace: namespace, status: .running, memoryLimitMiB: 512)
        }

        func openExec(_ name: String, _ command: ExecParameters, attachStdin: Bool) throws(MSBError) -> ExecSession {
            _ = try existing(name)
            sandboxes.record("\(namespace)/\(name) exec \(command.argv.joined(separator: " ")) timeout=\(Self.milliseconds(command.timeoutMilliseconds))")
            var fds: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
                throw MSBError(.agentFailure, "socketpair: \(String(cString: strerror(errno)))")
            }
            // What a supervisor would send for the exec (request id 1): its output, its end.
            let printed = Array((command.argv.dropFirst().joined(separator: " ") + "\n").utf8)
            let frames = Frame.encode(Envelope(id: 1, .stdout(printed))) + Frame.encode(Envelope(id: 1, .exited(ExitStatus(code: 0))))
            _ = frames.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
            sandboxes.keep(fds[1])
            return SupervisorConnection(fd: fds[0]).exec(ExecRequest(argv: command.argv, timeoutMilliseconds: command.timeoutMilliseconds ?? 0))
        }

        func runCode(_ name: String, language: String, code: String, timeoutMilliseconds: UInt64?, interruptFd: Int32?,
                     stdout: ([UInt8]) -> Void, stderr: ([UInt8]) -> Void) throws(MSBError) -> ReplOutcome {
            _ = try existing(name)
            sandboxes.record("\(namespace)/\(name) code \(language) timeout=\(Self.milliseconds(timeoutMilliseconds))")
            stdout(Array((code + "\n").utf8))
            return ReplOutcome(status: "success")
        }

        func fileOperation(_ name: String, _ operation: GuestFileOperation) throws(MSBError) -> GuestFileResult {
            _ = try existing(name)
            sandboxes.record("\(namespace)/\(name) fs \(operation.path)")
            let disk = sandboxes.disk
            return try GuestFileClient(sandbox: name) { (request) throws(MSBError) -> FileReply in disk.answer(request) }.perform(operation)
        }

        private static var nothing: MSBError { MSBError(.unsupported, "the fake sandboxes only run commands and code") }
        func create(_ config: SandboxConfig, start: Bool, fetch: ImageFetch?) throws(MSBError) -> SandboxInfo { throw Self.nothing }
        func start(_ name: String) throws(MSBError) -> SandboxInfo { throw Self.nothing }
        func stop(_ name: String, force: Bool) throws(MSBError) -> SandboxInfo { throw Self.nothing }
        func setPaused(_ name: String, _ paused: Bool) throws(MSBError) -> SandboxInfo { throw Self.nothing }
        func remove(_ name: String, force: Bool) throws(MSBError) { throw Self.nothing }
        func createSnapshot(_ name: String, of sandbox: String) throws(MSBError) -> SnapshotInfo { throw Self.nothing }
        func listSnapshots() throws(MSBError) -> [SnapshotInfo] { [] }
        func removeSnapshot(_ name: String) throws(MSBError) { throw Self.nothing }
        func createVolume(_ name: String) throws(MSBError) -> VolumeInfo { throw Self.nothing }
        func listVolumes() throws(MSBError) -> [VolumeInfo] { [] }
        func inspectVolume(_ name: String) throws(MSBError) -> VolumeInfo { throw Self.nothing }
        func removeVolume(_ name: String) throws(MSBError) { throw Self.nothing }
        func listImages() throws(MSBError) -> [ImageInfo] { [] }
        func pullImage(_ reference: String, insecure: Bool, credentials: String?,
                       progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo { throw Self.nothing }
        func buildImage(_ name: String, force: Bool, progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
            throw Self.nothing
        }
        func removeImage(_ name: String, force: Bool) throws(MSBError) { throw Self.nothing }
        func pruneImages() throws(MSBError) -> Int { 0 }
    }
}
