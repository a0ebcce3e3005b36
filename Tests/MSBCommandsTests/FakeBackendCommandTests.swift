import Foundation
import MSBClient
import MSBCore
import MSBProtocol
import Testing
@testable import MSBCommands

/// Commands through `CommandContext(makeBackend:)` with a backend the test controls: what
/// the command asks of the backend, what it prints and which exit code it returns.
@Suite struct FakeBackendCommandTests {
    final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func append(_ more: String) { lock.withLock { text += more } }
        var value: String { lock.withLock { text } }
    }

    /// Runs `msb ARGS` in-process against `backend`; returns exit code, stdout, stderr.
    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        let out = Recorder(), err = Recorder()
        let context = CommandContext(environment: ["HOME": "/nonexistent"], makeBackend: { backend },
                                     standardOutput: { out.append($0) }, standardError: { err.append($0) })
        let status = CLI.main(arguments, context: context)
        return (status, out.value, err.value)
    }

    @Test func listPrintsWhatTheBackendHas() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running), FakeBackend.info("db", .stopped)])
        let quiet = run(["ls", "-q"], backend)
        #expect(quiet.status == 0)
        #expect(quiet.out == "web\ndb\n")
        let json = run(["ls", "--format", "json"], backend)
        let objects = (try? JSONSerialization.jsonObject(with: Data(json.out.utf8))) as? [[String: Any]]
        #expect(objects?.map { $0["status"] as? String } == ["running", "stopped"])
        #expect(objects?.first?["namespace"] as? String == "default")
    }

    @Test func pauseAndResumeReachTheBackendForEachName() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running), FakeBackend.info("db", .running)])
        let paused = run(["pause", "web", "db"], backend)
        #expect(paused.out == "web\ndb\n")
        #expect(paused.status == 0)
        let resumed = run(["resume", "web", "ghost"], backend)
        #expect(backend.calls == ["pause web", "pause db", "resume web", "resume ghost"])
        #expect(resumed.out == "web\n")
        #expect(resumed.err == "error: sandbox not found: ghost\n  → run 'msb ls' to see sandboxes\n")
        #expect(resumed.status == 1)
    }

    @Test func stopOfEachNameIsReportedAndAnyFailureFailsTheCommand() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let result = run(["stop", "web", "ghost"], backend)
        #expect(backend.calls == ["stop web force=false", "stop ghost force=false"])
        #expect(result.out == "web\n")
        #expect(result.err == "error: sandbox not found: ghost\n  → run 'msb ls' to see sandboxes\n")
        #expect(result.status == 1)
    }

    @Test func usageErrorsNeverReachTheBackend() {
        let backend = FakeBackend(sandboxes: [])
        let result = run(["create", "--memory", "12XB"], backend)
        #expect(result.status == 2)
        #expect(result.err.hasPrefix("error: invalid memory size '12XB'"))
        #expect(backend.calls.isEmpty)
    }
}

/// A backend whose sandboxes are a list in memory; it records every call it gets.
final class FakeBackend: SandboxBackend, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [String] = []
    private var sandboxes: [SandboxInfo]
    private var snapshots: [SnapshotInfo]

    init(sandboxes: [SandboxInfo], snapshots: [SnapshotInfo] = []) {
        self.sandboxes = sandboxes
        self.snapshots = snapshots
    }

    static func snapshot(_ name: String, of source: String, digest: String? = nil) -> SnapshotInfo {
        SnapshotInfo(name: name, source: source, image: "python", imageDigest: digest, cpus: 2, memoryMiB: 1024,
                     createdAt: Date(timeIntervalSince1970: 1_700_000_000), sizeBytes: 1_500_000)
    }

    static func info(_ name: String, _ status: SandboxStatus) -> SandboxInfo {
        SandboxInfo(config: SandboxConfig(name: name), status: status, createdAt: Date(timeIntervalSince1970: 1_700_000_000))
    }

    private var configs: [SandboxConfig] = []
    private var fetches: [ImageFetch?] = []
    private var waitAnswers: [String: [SandboxStatus]] = [:]
    private var waitTimeouts: [Double] = []

    var calls: [String] { lock.withLock { recorded } }
    private var argvs: [[String]] = []
    /// The argv of every exec, in order.
    var execArgvs: [[String]] { lock.withLock { argvs } }
    /// The configs `create` was given, in order.
    var createdConfigs: [SandboxConfig] { lock.withLock { configs } }
    /// The image fetches `create` was given, in order.
    var createdFetches: [ImageFetch?] { lock.withLock { fetches } }
    private func record(_ call: String) { lock.withLock { recorded.append(call) } }

    private func find(_ name: String) throws(MSBError) -> SandboxInfo {
        guard let info = sandboxes.first(where: { $0.name == name }) else { throw MSBError.sandboxNotFound(name) }
        return info
    }

    func create(_ config: SandboxConfig, start: Bool, fetch: ImageFetch?) throws(MSBError) -> SandboxInfo {
        record("create \(config.name)" + (config.snapshot.map { " from \($0)" } ?? ""))
        lock.withLock {
            configs.append(config)
            fetches.append(fetch)
        }
        throw MSBError(.unsupported, "the fake backend creates nothing")
    }
    func start(_ name: String) throws(MSBError) -> SandboxInfo { record("start \(name)"); return try find(name) }
    func stop(_ name: String, force: Bool) throws(MSBError) -> SandboxInfo {
        record("stop \(name) force=\(force)")
        var info = try find(name)
        info.status = .stopped
        return info
    }
    func setPaused(_ name: String, _ paused: Bool) throws(MSBError) -> SandboxInfo {
        record("\(paused ? "pause" : "resume") \(name)")
        var info = try find(name)
        info.status = paused ? .paused : .running
        return info
    }
    func remove(_ name: String, force: Bool) throws(MSBError) { record("rm \(name)"); _ = try find(name) }
    func list() throws(MSBError) -> [SandboxInfo] { record("list"); return sandboxes }
    func inspect(_ name: String) throws(MSBError) -> SandboxInfo { record("inspect \(name)"); return try find(name) }
    /// Answers the statuses queued with `queueWaits`, one per call, then the sandbox's own.
    func wait(_ name: String, timeoutSeconds: Double) throws(MSBError) -> SandboxInfo {
        record("wait \(name)")
        var info = try find(name)
        lock.withLock {
            waitTimeouts.append(timeoutSeconds)
            if let next = waitAnswers[name]?.first {
                info.status = next
                waitAnswers[name]?.removeFirst()
            }
        }
        return info
    }
    func drain(_ name: String, timeoutSeconds: Double?) throws(MSBError) -> SandboxInfo {
        record("drain \(name) timeout=\(timeoutSeconds.map { "\($0)s" } ?? "none")")
        var info = try find(name)
        info.status = .draining
        return info
    }
    func queueWaits(_ name: String, _ statuses: [SandboxStatus]) { lock.withLock { waitAnswers[name, default: []] += statuses } }
    /// The `timeoutSeconds` of every `wait` call, in order.
    var askedWaitSeconds: [Double] { lock.withLock { waitTimeouts } }
    func openExec(_ name: String, _ command: ExecParameters, attachStdin: Bool) throws(MSBError) -> ExecSession {
        record("exec \(name)")
        lock.withLock { argvs.append(command.argv) }
        throw MSBError(.unsupported, "the fake backend runs nothing")
    }
    func runCode(_ name: String, language: String, code: String, timeoutMilliseconds: UInt64?, interruptFd: Int32?,
                 stdout: ([UInt8]) -> Void, stderr: ([UInt8]) -> Void) throws(MSBError) -> ReplOutcome {
        throw MSBError(.unsupported, "the fake backend runs nothing")
    }
    func metrics(_ name: String) throws(MSBError) -> SandboxMetrics {
        SandboxMetrics(name: name, status: try find(name).status, memoryLimitMiB: 512)
    }
    func createSnapshot(_ name: String, of sandbox: String) throws(MSBError) -> SnapshotInfo {
        record("snapshot create \(sandbox) \(name)")
        guard try find(sandbox).status == .running else { throw MSBError(.invalidState, "sandbox \(sandbox) is not running") }
        lock.lock()
        defer { lock.unlock() }
        guard !snapshots.contains(where: { $0.name == name }) else { throw MSBError(.alreadyExists, "snapshot \(name) already exists") }
        let info = Self.snapshot(name, of: sandbox)
        snapshots.append(info)
        return info
    }
    func listSnapshots() throws(MSBError) -> [SnapshotInfo] { record("snapshot ls"); return lock.withLock { snapshots } }
    func removeSnapshot(_ name: String) throws(MSBError) {
        record("snapshot rm \(name)")
        lock.lock()
        defer { lock.unlock() }
        guard let index = snapshots.firstIndex(where: { $0.name == name }) else { throw MSBError.snapshotNotFound(name) }
        snapshots.remove(at: index)
    }
    // Volumes: a list in memory, refused while a sandbox's config mounts one, like the store.
    private var volumes: [VolumeInfo] = []
    func createVolume(_ name: String) throws(MSBError) -> VolumeInfo {
        record("volume create \(name)")
        lock.lock()
        defer { lock.unlock() }
        guard !volumes.contains(where: { $0.name == name }) else { throw MSBError(.alreadyExists, "volume already exists: \(name)") }
        let info = VolumeInfo(name: name, createdAt: Date(timeIntervalSince1970: 1_700_000_000), hostPath: "/msb/volumes/\(name)/data")
        volumes.append(info)
        return info
    }
    func listVolumes() throws(MSBError) -> [VolumeInfo] {
        record("volume ls")
        return lock.withLock { volumes.map { v in var v = v; v.usedBy = users(of: v.name); return v } }
    }
    func inspectVolume(_ name: String) throws(MSBError) -> VolumeInfo {
        record("volume inspect \(name)")
        guard var info = lock.withLock({ volumes.first { $0.name == name } }) else { throw MSBError.volumeNotFound(name) }
        info.usedBy = users(of: name)
        info.sizeBytes = 1_500_000
        return info
    }
    func removeVolume(_ name: String) throws(MSBError) {
        record("volume rm \(name)")
        lock.lock()
        defer { lock.unlock() }
        guard let index = volumes.firstIndex(where: { $0.name == name }) else { throw MSBError.volumeNotFound(name) }
        let users = users(of: name)
        guard users.isEmpty else { throw MSBError.volumeInUse(name, by: users) }
        volumes.remove(at: index)
    }
    private func users(of volume: String) -> [String] { sandboxes.filter { $0.config.mounts(volume: volume) }.map(\.name) }

    func listImages() throws(MSBError) -> [ImageInfo] { [] }
    func pullImage(_ reference: String, insecure: Bool, credentials: String?,
                   progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        throw MSBError(.unsupported, "no images here")
    }
    func buildImage(_ name: String, force: Bool, progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        throw MSBError(.unsupported, "no images here")
    }
    func removeImage(_ name: String, force: Bool) throws(MSBError) {}
    func pruneImages() throws(MSBError) -> Int { 0 }

    /// Guest files in memory (path → bytes; directories are the paths in `directories`).
    private var files: [String: [UInt8]] = [:]
    private var directories: Set<String> = ["/"]
    func putFile(_ path: String, _ bytes: [UInt8]) { lock.withLock { files[path] = bytes } }
    func file(_ path: String) -> [UInt8]? { lock.withLock { files[path] } }

    /// The start command logs `logs` answers with, by sandbox.
    var logText: [String: String] = [:]

    func logs(_ name: String, maxBytes: Int) throws(MSBError) -> SandboxLog {
        _ = try find(name)
        record("logs \(name)")
        let bytes = Array((lock.withLock { logText[name] } ?? "").utf8)
        return SandboxLog(bytes: Array(bytes.suffix(maxBytes)), truncated: maxBytes < bytes.count)
    }

    func fileOperation(_ name: String, _ operation: GuestFileOperation) throws(MSBError) -> GuestFileResult {
        _ = try find(name)
        lock.lock()
        defer { lock.unlock() }
        recorded.append("fs \(name) \(operation)")
        let path = operation.path
        let missing = MSBError(.notFound, "cannot reach \(name):\(path): no such file or directory")
        switch operation {
        case .read(_, let offset, let length):
            guard let bytes = files[path] else { throw directories.contains(path) ? MSBError(.isADirectory, "is a directory") : missing }
            let start = min(Int(offset), bytes.count)
            return .contents(Array(bytes[start..<min(bytes.count, start + length)]), fileSizeBytes: UInt64(bytes.count))
        case .write(_, let offset, let contents, _):
            var bytes = offset == 0 ? [] : files[path] ?? []
            bytes.replaceSubrange(min(Int(offset), bytes.count)..., with: contents)
            files[path] = bytes
            return .written(fileSizeBytes: UInt64(bytes.count))
        case .list:
            guard directories.contains(path) else { throw files[path] == nil ? missing : MSBError(.notADirectory, "not a directory") }
            let prefix = path == "/" ? "/" : path + "/"
            let names = (Array(files.keys) + Array(directories)).filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/") && $0 != "/" }
            return .entries(names.sorted().map { full in
                GuestFileInfo(name: String(full.dropFirst(prefix.count)), type: directories.contains(full) ? "directory" : "file",
                              size: UInt64(files[full]?.count ?? 0), mode: directories.contains(full) ? 0o755 : 0o644, modified: 1_700_000_000)
            })
        case .stat:
            guard let bytes = files[path] else { throw missing }
            return .info(GuestFileInfo(name: String(path.split(separator: "/").last ?? "/"), type: "file", size: UInt64(bytes.count),
                                       mode: 0o644, modified: 1_700_000_000))
        case .makeDirectory: directories.insert(path)
        case .remove: guard files.removeValue(forKey: path) != nil || directories.remove(path) != nil else { throw missing }
        case .rename(_, let destination):
            guard let bytes = files.removeValue(forKey: path) else { throw missing }
            files[destination] = bytes
        }
        return .done
    }
}

/// Text from a guest, registry or server reaches the terminal only with its control
/// characters escaped.
@Suite struct TerminalSafeErrorTests {
    @Test func controlCharactersInMessagesAreEscaped() {
        #expect(CommandContext.terminalSafe("plain text: ok") == "plain text: ok")
        #expect(CommandContext.terminalSafe("bad\u{1b}]0;owned\u{07}name") == "bad\\x1b]0;owned\\x07name")
        #expect(CommandContext.terminalSafe("line\nerror: forged") == "line\\x0aerror: forged")
        #expect(CommandContext.terminalSafe("\u{9b}31m") == "\\x9b31m")
        #expect(CommandContext.terminalSafe("abc\u{202e}cba") == "abc\\u{202e}cba")
    }
}
