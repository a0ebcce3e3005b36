import CMSBSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Everything a child process is started with. Every process msb starts (QEMU, the
/// supervisor, the detached server, host tools, the agent's guest commands) is described
/// by one of these and started by `ChildProcess.spawn`.
package struct SpawnSpec: Sendable {
    package var executable: String
    /// argv, including argv[0].
    package var arguments: [String]
    package var environment: [String]
    package var workingDirectory: String?
    /// The child's fds 0, 1, 2: nil gives /dev/null. Every descriptor not named here or in
    /// `inheritedDescriptors` is closed in the child.
    package var standardInput: Int32?
    package var standardOutput: Int32?
    package var standardError: Int32?
    /// Become the child's fds 3, 4, 5, ... in this order (at most 17).
    package var inheritedDescriptors: [Int32] = []
    /// Own session and process group: no terminal signals reach it, killable as a group.
    package var newSession = true
    /// SIGKILL when its parent ends, so nothing outlives its owner. Linux sends it when the
    /// *thread* that spawned the child ends: spawn from a thread that lives as long as the owner.
    package var dieWithParent = false
    /// Resolve a bare `executable` through the PATH in `environment`.
    package var searchPath = false
    /// Make fd 0 (a terminal) the controlling terminal; needs `newSession`.
    package var controllingTerminal = false
    /// Switch to this uid and gid (dropping supplementary groups) before exec.
    package var credentials: (uid: Int32, gid: Int32)?
    /// Set no_new_privs: a set-user-ID binary or file capabilities cannot raise the child again.
    package var noNewPrivileges = false
    /// Mount, in a private mount namespace, a copy of the directory tree at the child's fd 3
    /// (the first inherited descriptor; closed before exec) on `workingDirectory`: the child
    /// sees exactly the directory that descriptor holds, nosuid and nodev, read-only if
    /// `.readOnly`. Needs root.
    package var mountTree: MountTree?
    package enum MountTree: Sendable { case readWrite, readOnly }

    /// The PATH children get unless a caller has reason to pass another.
    package static let defaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    package init(_ executable: String, arguments: [String]? = nil, environment: [String] = ["PATH=\(defaultSearchPath)"]) {
        self.executable = executable
        self.arguments = arguments ?? [executable]
        self.environment = environment
    }
}

/// Where starting a child failed, with the errno it failed with.
package struct SpawnError: Error, Equatable, Sendable, CustomStringConvertible {
    package enum Stage: Int32, Sendable {
        case fork = 1
        case workingDirectory = 2
        case exec = 3
        case credentials = 4
        case mountTree = 5
    }
    package var stage: Stage
    package var errorNumber: Int32
    package var executable: String

    package var reason: String { String(cString: strerror(errorNumber)) }

    package var description: String {
        switch stage {
        case .fork: "cannot start \(executable): \(reason)"
        case .workingDirectory: "cannot change to the working directory for \(executable): \(reason)"
        case .exec: "cannot run \(executable): \(reason)"
        case .credentials: "cannot switch user for \(executable): \(reason)"
        case .mountTree: "cannot give \(executable) its directory: \(reason)"
        }
    }
}

/// A started child process. Its owner reaps it with `wait` or `poll`.
package struct ChildProcess: Sendable {
    package let pid: Int32

    package init(pid: Int32) { self.pid = pid }

    package static func spawn(_ spec: SpawnSpec) throws(SpawnError) -> ChildProcess {
        var flags: Int32 = 0
        if spec.newSession { flags |= Int32(MSB_SPAWN_SETSID) }
        if spec.dieWithParent { flags |= Int32(MSB_SPAWN_PDEATHSIG) }
        if spec.searchPath { flags |= Int32(MSB_SPAWN_SEARCH_PATH) }
        if spec.controllingTerminal { flags |= Int32(MSB_SPAWN_CTTY) }
        if spec.noNewPrivileges { flags |= Int32(MSB_SPAWN_NO_NEW_PRIVS) }
        switch spec.mountTree {
        case .readWrite?: flags |= Int32(MSB_SPAWN_MOUNT_TREE)
        case .readOnly?: flags |= Int32(MSB_SPAWN_MOUNT_TREE) | Int32(MSB_SPAWN_MOUNT_READONLY)
        case nil: break
        }
        var errorCode: Int32 = 0, stage: Int32 = 0
        let descriptors = [spec.standardInput ?? -1, spec.standardOutput ?? -1, spec.standardError ?? -1] + spec.inheritedDescriptors
        guard descriptors.count <= Int(MSB_SPAWN_MAX_FDS) else {
            throw SpawnError(stage: .fork, errorNumber: EINVAL, executable: spec.executable)
        }
        let pid = withCStringArray(spec.arguments) { argv in
            withCStringArray(spec.environment) { envp in
                descriptors.withUnsafeBufferPointer { fds in
                    msb_spawn(spec.executable, argv, envp, spec.workingDirectory, fds.baseAddress, Int32(fds.count),
                              flags, spec.credentials?.uid ?? -1, spec.credentials?.gid ?? -1, &errorCode, &stage)
                }
            }
        }
        guard pid > 0 else {
            throw SpawnError(stage: SpawnError.Stage(rawValue: stage) ?? .fork, errorNumber: errorCode, executable: spec.executable)
        }
        return ChildProcess(pid: pid)
    }

    /// Blocks until the child ends.
    package func wait() -> WaitStatus {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, 0)
            if result == pid { return WaitStatus(rawStatus: status) }
            if result < 0 && errno == EINTR { continue }
            // Reaped elsewhere (ECHILD): nothing more can be known.
            return .signaled(SIGKILL)
        }
    }

    /// The child's status if it has ended, without blocking. A child reaped elsewhere
    /// reads as killed.
    package func poll() -> WaitStatus? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return WaitStatus(rawStatus: status) }
        if result < 0 && errno == ECHILD { return .signaled(SIGKILL) }
        return nil
    }

    /// SIGTERM, then SIGKILL once `graceSeconds` have passed; returns how it ended (reaped).
    /// Blocks up to the grace: for an owner's exit paths, not inside a serving loop.
    package func terminate(graceSeconds: Double) -> WaitStatus {
        signal(SIGTERM)
        let deadline = MonotonicClock.now() + graceSeconds
        while MonotonicClock.now() < deadline {
            if let status = poll() { return status }
            usleep(10_000)
        }
        signal(SIGKILL)
        return wait()
    }

    /// Sends a signal to the child (or, with `group`, to its process group).
    @discardableResult
    package func signal(_ signo: Int32, group: Bool = false) -> Bool {
        kill(group ? -pid : pid, signo) == 0
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
package func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for p in pointers { free(p) } }
    // Never empty (the terminating nil), so the buffer always has storage.
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
