import CMSBSys
import Glibc
import MSBOS
import MSBProtocol

/// One process started by an exec request, with its pipes (or PTY master) and the
/// bookkeeping needed to report its end only after all of its output was sent.
final class AgentSession {
    let id: UInt32
    let pid: pid_t
    /// Where stdin bytes go: the pipe's write end, or the PTY master. -1 once closed.
    var stdinFd: Int32
    var stdoutFd: Int32
    var stderrFd: Int32
    let isTTY: Bool
    var pendingStdin: [UInt8] = []
    var stdinCloseRequested = false
    let deadline: Double?
    var timedOut = false
    var exitStatus: ExitStatus?
    /// When the process was reaped; output is drained for a short grace period after it,
    /// so a background child that keeps stdout open cannot hold the exec forever.
    var reapedAt: Double?

    init(id: UInt32, pid: pid_t, stdinFd: Int32, stdoutFd: Int32, stderrFd: Int32, isTTY: Bool, deadline: Double?) {
        self.id = id
        self.pid = pid
        self.stdinFd = stdinFd
        self.stdoutFd = stdoutFd
        self.stderrFd = stderrFd
        self.isTTY = isTTY
        self.deadline = deadline
    }

    var outputOpen: Bool { stdoutFd >= 0 || stderrFd >= 0 }

    func closeStdin() {
        // With a PTY the master is shared with stdout: send EOF (Ctrl-D) instead of closing.
        if isTTY {
            if stdinFd >= 0 { _ = [UInt8(4)].withUnsafeBytes { write(stdinFd, $0.baseAddress, 1) } }
            stdinFd = -1
            return
        }
        if stdinFd >= 0 { close(stdinFd); stdinFd = -1 }
    }

    func closeAll() {
        if !isTTY && stdinFd >= 0 { close(stdinFd) }
        stdinFd = -1
        if stdoutFd >= 0 { close(stdoutFd); stdoutFd = -1 }
        if stderrFd >= 0 { close(stderrFd); stderrFd = -1 }
    }

    func signal(_ signo: Int32) {
        // The process leads its own session and group: signal the whole group.
        if kill(-pid, signo) != 0 { _ = kill(pid, signo) }
    }
}

/// Starts processes for exec requests.
enum ProcessLauncher {
    struct UserIdentity {
        var uid: Int32 = -1
        var gid: Int32 = -1
        var name = "root"
        var home = "/root"
    }

    /// `name`, `uid`, `name:group` or `uid:gid`, looked up in the root's own /etc/passwd
    /// and /etc/group (no NSS: the agent is static). Empty means root.
    static func resolveUser(_ spec: String) -> Result<UserIdentity, ExecFailure> {
        guard !spec.isEmpty else { return .success(UserIdentity()) }
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        let passwd = (GuestStatistics.readFile("/etc/passwd") ?? "").split(separator: "\n").map {
            $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }.filter { $0.count >= 7 }
        var identity = UserIdentity()
        if let uid = Int32(parts[0]) {
            identity.uid = uid
            identity.name = parts[0]
            identity.gid = 0
            if let entry = passwd.first(where: { Int32($0[2]) == uid }) {
                identity.name = entry[0]; identity.gid = Int32(entry[3]) ?? 0; identity.home = entry[5]
            }
        } else if let entry = passwd.first(where: { $0[0] == parts[0] }), let uid = Int32(entry[2]) {
            identity.uid = uid; identity.gid = Int32(entry[3]) ?? 0; identity.name = entry[0]; identity.home = entry[5]
        } else {
            return .failure(ExecFailure(kind: .failed, message: "unable to find user \(parts[0]): no matching entries in passwd file"))
        }
        if parts.count > 1 {
            if let gid = Int32(parts[1]) {
                identity.gid = gid
            } else if let group = (GuestStatistics.readFile("/etc/group") ?? "").split(separator: "\n")
                        .map({ $0.split(separator: ":", omittingEmptySubsequences: false) })
                        .first(where: { $0.count >= 3 && $0[0] == parts[1] }), let gid = Int32(group[2]) {
                identity.gid = gid
            } else {
                return .failure(ExecFailure(kind: .failed, message: "unable to find group \(parts[1]): no matching entries in group file"))
            }
        }
        return .success(identity)
    }

    static func environment(for request: ExecRequest, user: UserIdentity) -> [String] {
        var env: [String: String] = ["PATH": SpawnSpec.defaultSearchPath, "HOME": user.home, "USER": user.name]
        if let host = hostname() { env["HOSTNAME"] = host }
        if request.tty { env["TERM"] = "xterm-256color" }
        var order = ["PATH", "HOME", "USER", "HOSTNAME", "TERM"].filter { env[$0] != nil }
        for item in request.environment {
            guard let eq = item.firstIndex(of: "=") else { continue }
            let key = String(item[..<eq])
            if env[key] == nil { order.append(key) }
            env[key] = String(item[item.index(after: eq)...])
        }
        return order.compactMap { key in env[key].map { "\(key)=\($0)" } }
    }

    static func hostname() -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, 255) == 0 else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Returns the session, or the failure to report.
    static func launch(id: UInt32, request: ExecRequest, now: Double) -> Result<AgentSession, ExecFailure> {
        guard let program = request.argv.first, !program.isEmpty else {
            return .failure(ExecFailure(kind: .failed, message: "no command given"))
        }
        var childStdin: Int32 = -1, childStdout: Int32 = -1, childStderr: Int32 = -1
        var ourStdin: Int32 = -1, ourStdout: Int32 = -1, ourStderr: Int32 = -1
        var toClose: [Int32] = []
        if request.tty {
            var master: Int32 = -1, slave: Int32 = -1
            guard msb_openpty(&master, &slave) == 0 else {
                return .failure(ExecFailure(kind: .failed, message: "cannot allocate a pseudo-terminal: \(errnoText())"))
            }
            _ = msb_set_winsize(master, request.rows, request.cols)
            childStdin = slave; childStdout = slave; childStderr = slave
            ourStdin = master; ourStdout = master
            toClose = [slave]
        } else {
            var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
            if request.attachStdin {
                guard msb_pipe(&inPipe, 0) == 0 else { return .failure(pipeFailure()) }
                childStdin = inPipe[0]; ourStdin = inPipe[1]; toClose.append(inPipe[0])
            }
            guard msb_pipe(&outPipe, 0) == 0 else { return .failure(pipeFailure()) }
            guard msb_pipe(&errPipe, 0) == 0 else { return .failure(pipeFailure()) }
            childStdout = outPipe[1]; childStderr = errPipe[1]
            ourStdout = outPipe[0]; ourStderr = errPipe[0]
            toClose += [outPipe[1], errPipe[1]]
        }
        let user: UserIdentity
        switch resolveUser(request.user) {
        case .success(let identity): user = identity
        case .failure(let failure):
            for fd in toClose + [ourStdin, ourStdout, ourStderr] where fd >= 0 { close(fd) }
            return .failure(failure)
        }
        let env = environment(for: request, user: user)
        let cwd = request.workingDirectory.isEmpty ? "/" : request.workingDirectory
        var spec = SpawnSpec(program, arguments: request.argv, environment: env)
        spec.workingDirectory = cwd
        spec.standardInput = childStdin
        spec.standardOutput = childStdout
        spec.standardError = childStderr
        spec.searchPath = true
        spec.controllingTerminal = request.tty
        spec.credentials = (user.uid, user.gid)
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(spec).pid
        } catch {
            for fd in toClose + [ourStdin, ourStdout, ourStderr] where fd >= 0 { close(fd) }
            return .failure(failure(program: program, cwd: cwd, error: error))
        }
        for fd in toClose { close(fd) }
        for fd in [ourStdin, ourStdout, ourStderr] where fd >= 0 { _ = msb_set_nonblocking(fd, 1) }
        let deadline = request.timeoutMilliseconds > 0 ? now + Double(request.timeoutMilliseconds) / 1000 : nil
        return .success(AgentSession(
            id: id, pid: pid, stdinFd: ourStdin, stdoutFd: ourStdout, stderrFd: ourStderr,
            isTTY: request.tty, deadline: deadline))
    }

    static func failure(program: String, cwd: String, error: SpawnError) -> ExecFailure {
        switch (error.stage, error.errorNumber) {
        case (.workingDirectory, _):
            return ExecFailure(kind: .failed, message: "cannot change to directory \(cwd): \(error.reason)")
        case (.credentials, _):
            return ExecFailure(kind: .failed, message: "cannot switch user: \(error.reason)")
        case (.exec, ENOENT) where !program.contains("/"):
            return ExecFailure(kind: .notFound, message: "\(program): executable file not found in $PATH")
        case (.exec, ENOENT):
            return ExecFailure(kind: .notFound, message: "\(program): no such file or directory")
        case (.exec, EACCES), (.exec, ENOEXEC), (.exec, EISDIR):
            return ExecFailure(kind: .notExecutable, message: "\(program): permission denied (not executable)")
        default:
            return ExecFailure(kind: .failed, message: "cannot start \(program): \(error.reason)")
        }
    }

    static func pipeFailure() -> ExecFailure {
        ExecFailure(kind: .failed, message: "cannot create pipes: \(errnoText())")
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
