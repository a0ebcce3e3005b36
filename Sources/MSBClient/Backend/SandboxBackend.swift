import MSBCore
import MSBOS
import MSBProtocol

/// What every front end (the CLI, the server) asks of sandboxes. `LocalBackend` drives
/// microVMs on this host; `RemoteBackend` speaks to an `msb server`. Callers never learn
/// which one they hold.
package protocol SandboxBackend {
    /// Creates the sandbox and, with `start`, boots it and returns once the guest agent answers.
    /// `fetch` says whether and how its image is pulled or built when it is not here (on a
    /// server: by the server); nil: the image must be here.
    func create(_ config: SandboxConfig, start: Bool, fetch: ImageFetch?) throws(MSBError) -> SandboxInfo
    /// Boots a stopped sandbox with its saved config; a running one is left as it is.
    func start(_ name: String) throws(MSBError) -> SandboxInfo
    func stop(_ name: String, force: Bool) throws(MSBError) -> SandboxInfo
    /// Stops (`paused` true) or continues the sandbox's vCPUs; its memory and processes stay.
    func setPaused(_ name: String, _ paused: Bool) throws(MSBError) -> SandboxInfo
    func remove(_ name: String, force: Bool) throws(MSBError)
    func list() throws(MSBError) -> [SandboxInfo]
    func inspect(_ name: String) throws(MSBError) -> SandboxInfo
    /// Blocks until the sandbox is not running (stopped, crashed, or never started) or
    /// `timeoutSeconds` passed, and returns its state then: still running (or starting,
    /// paused, stopping) when the time ran out. Callers wanting longer ask again.
    func wait(_ name: String, timeoutSeconds: Double) throws(MSBError) -> SandboxInfo
    /// New commands are refused from now on; the sandbox stops by itself once the running
    /// ones have ended, or after `timeoutSeconds` (nil: no limit). Returns once it drains.
    func drain(_ name: String, timeoutSeconds: Double?) throws(MSBError) -> SandboxInfo
    /// Starts a command in the sandbox; its session streams the I/O up to the end.
    func openExec(_ name: String, _ command: ExecParameters, attachStdin: Bool) throws(MSBError) -> ExecSession
    /// Evaluates code in the sandbox's long-lived interpreter for `language`.
    func runCode(_ name: String, language: String, code: String, timeoutMilliseconds: UInt64?, interruptFd: Int32?,
                 stdout: ([UInt8]) -> Void, stderr: ([UInt8]) -> Void) throws(MSBError) -> ReplOutcome
    /// Resource use of one sandbox, as the guest and the host see it.
    func metrics(_ name: String) throws(MSBError) -> SandboxMetrics
    /// One Files API operation on the guest's own file system (GuestFiles.swift): guest
    /// paths only, reads and writes in ranges of at most `GuestFileOperation.maxChunkBytes`.
    func fileOperation(_ name: String, _ operation: GuestFileOperation) throws(MSBError) -> GuestFileResult
    /// The last `maxBytes` of the start command's log (`msb logs`, `sandbox.logs`): its
    /// output and msb's `[msb]` lines; empty for a sandbox without a start command.
    func logs(_ name: String, maxBytes: Int) throws(MSBError) -> SandboxLog

    // Named snapshots belong to the namespace, like sandboxes.
    /// Saves the running sandbox's whole state (memory, devices, disk) as snapshot `name`;
    /// the sandbox runs on. Sandboxes start from it with `SandboxConfig.snapshot`.
    func createSnapshot(_ name: String, of sandbox: String) throws(MSBError) -> SnapshotInfo
    func listSnapshots() throws(MSBError) -> [SnapshotInfo]
    /// Refused while a sandbox made from it exists.
    func removeSnapshot(_ name: String) throws(MSBError)

    // Named volumes belong to the namespace, like sandboxes (`msb volume`).
    func createVolume(_ name: String) throws(MSBError) -> VolumeInfo
    func listVolumes() throws(MSBError) -> [VolumeInfo]
    /// With its size and the sandboxes that mount it.
    func inspectVolume(_ name: String) throws(MSBError) -> VolumeInfo
    /// Refused while a sandbox's config mounts it.
    func removeVolume(_ name: String) throws(MSBError)

    // Images are shared by every sandbox of a host (or of a server).
    func listImages() throws(MSBError) -> [ImageInfo]
    /// `credentials` is `user:password` for the registry, when it needs them.
    func pullImage(_ reference: String, insecure: Bool, credentials: String?,
                   progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo
    func buildImage(_ name: String, force: Bool, progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo
    func removeImage(_ name: String, force: Bool) throws(MSBError)
    /// Drops cached blobs and leftovers; returns how many were removed.
    func pruneImages() throws(MSBError) -> Int
}

extension SandboxBackend {
    /// Makes sure the start template for sandboxes of this image and size exists: one
    /// throwaway sandbox is started (building the template if there is none) and removed.
    package func warmTemplate(image: String, memoryMiB: Int? = nil, cpus: Int? = nil) throws(MSBError) {
        var config = SandboxConfig(name: "warm-" + String(UInt32.random(in: 0...UInt32.max), radix: 16), image: image)
        if let memoryMiB { config.memoryMiB = memoryMiB }
        if let cpus { config.cpus = cpus }
        _ = try create(config, start: true)
        try remove(config.name, force: true)
    }

    /// `--replace` / `replace: true`: removes the sandbox `name` if there is one, stopping it
    /// first. Each step leaves a true state behind if the caller is killed after it: the
    /// sandbox is stopped (recorded by its supervisor), then its record goes as its directory
    /// is moved aside (one step under the record's lock), then the moved directory goes.
    package func removeIfPresent(_ name: String) throws(MSBError) {
        do throws(MSBError) {
            try remove(name, force: true)
        } catch where error.code == .notFound {
            return
        }
    }

    /// Creates the sandbox and boots it.
    package func create(_ config: SandboxConfig) throws(MSBError) -> SandboxInfo { try create(config, start: true, fetch: nil) }

    /// Creates the sandbox (booting it with `start`) from an image that must be here.
    package func create(_ config: SandboxConfig, start: Bool) throws(MSBError) -> SandboxInfo { try create(config, start: start, fetch: nil) }

    /// Runs a command in the sandbox, streaming its I/O; returns how it ended.
    package func exec(_ name: String, _ command: ExecParameters, io: ExecIO) throws(MSBError) -> ExecOutcome {
        try openExec(name, command, attachStdin: io.stdinFd != nil).run(io)
    }
}

/// `msb metrics` figures; the JSON names follow the sandbox SDKs' metrics keys.
package struct SandboxMetrics: Sendable, Equatable {
    package var name: String
    package var namespace = "default"
    package var status: SandboxStatus
    package var running: Bool { status.guestRuns }
    /// Percent of one host CPU used by the VM over the last second or so.
    package var cpuPercent: Double?
    package var memoryUsedMiB: Int?
    package var memoryLimitMiB: Int
    package var diskUsedBytes: Int?
    package var uptimeSeconds: Double?
    /// Bytes the guest's network interface received and sent since boot, as the guest
    /// counts them; nil when the sandbox is not running.
    package var networkReceivedBytes: Int?
    package var networkSentBytes: Int?

    package init(name: String, namespace: String = "default", status: SandboxStatus, memoryLimitMiB: Int) {
        self.name = name
        self.namespace = namespace
        self.status = status
        self.memoryLimitMiB = memoryLimitMiB
    }
}

/// A command to run in a sandbox.
package struct ExecParameters: Sendable {
    package var argv: [String]
    package var environment: [String] = []
    package var workingDirectory: String = ""
    package var tty = false
    /// Initial terminal size for tty execs.
    package var rows: UInt16 = 24
    package var cols: UInt16 = 80
    package var timeoutMilliseconds: UInt64?
    /// Empty: the sandbox's default user (its image's User, else root).
    package var user = ""

    package init(argv: [String], environment: [String] = [], workingDirectory: String = "", tty: Bool = false,
                 timeoutMilliseconds: UInt64? = nil) {
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.tty = tty
        self.timeoutMilliseconds = timeoutMilliseconds
    }
}

extension ExecRequest {
    /// The wire request for `parameters`; `attachStdin` when the caller will stream stdin.
    init(parameters p: ExecParameters, attachStdin: Bool) {
        self.init(argv: p.argv, environment: p.environment, workingDirectory: p.workingDirectory, attachStdin: attachStdin,
                  tty: p.tty, rows: p.rows, cols: p.cols, timeoutMilliseconds: p.timeoutMilliseconds ?? 0, user: p.user)
    }
}

package enum ExecOutcome: Equatable, Sendable {
    case exited(ExitStatus)
    case failed(ExecFailure)
    /// The user detached; the process is still running in the sandbox.
    case detached

    /// The exit code a shell sees, following `docker exec`: the command's own code,
    /// 128+N when killed by signal N, 124 on timeout, 127 not found, 126 not executable,
    /// 125 when it could not be started for another reason (or the agent reported a status
    /// no process can have).
    package var exitCode: Int32 {
        switch self {
        case .detached:
            return 0
        case .exited(let status):
            if status.timedOut { return 124 }
            // The agent reports these, and a hostile guest can report anything: a signal or
            // code no process can have becomes 125 rather than an overflow.
            if status.signal != 0 { return (1...64).contains(status.signal) ? 128 + status.signal : 125 }
            return (0...255).contains(status.code) ? status.code : 125
        case .failed(let failure):
            switch failure.kind {
            case .notFound: return 127
            case .notExecutable: return 126
            case .failed: return 125
            }
        }
    }
}
