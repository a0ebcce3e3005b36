import CMSBSys
import Foundation
import MSBCore
import MSBOS
import MSBProtocol

/// Starts a detached supervisor process (`msb _supervise NAME`) and waits for it to
/// report that the guest agent answered, or why it could not.
package struct SupervisorLauncher {
    let paths: MSBPaths
    /// The msb executable to run as the supervisor.
    let executable: String

    init(paths: MSBPaths, executable: String? = nil) {
        self.paths = paths
        self.executable = executable ?? SupervisorLauncher.currentExecutable()
    }

    /// This msb executable: supervisors and detached servers run it again.
    package static func currentExecutable() -> String { CurrentExecutable.path }

    struct Launched {
        let process: ProcessIdentity
        /// Read end of the readiness pipe.
        let readyFd: Int32
    }

    /// Spawns the supervisor in its own session with a minimal environment.
    func spawn(name: String) throws(MSBError) -> Launched {
        var pipeFds: [Int32] = [-1, -1]
        guard msb_pipe(&pipeFds, 0) == 0 else {
            throw MSBError(.internalError, "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        let logFd = open(paths.supervisorLog(name), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { if logFd >= 0 { close(logFd) } }
        var spec = SpawnSpec(executable, arguments: [executable, "_supervise", name],
                             environment: paths.childEnvironment(passing: ["LANG", "MSB_TCG_CACHE_MIB"]))
        spec.workingDirectory = "/"
        spec.standardOutput = logFd
        spec.standardError = logFd
        spec.inheritedDescriptors = [pipeFds[1]]
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(spec)
        } catch {
            close(pipeFds[0]); close(pipeFds[1])
            throw MSBError(.internalError, "cannot start the sandbox supervisor: \(error.reason)")
        }
        close(pipeFds[1])
        let pid = child.pid
        let identity = ProcessIdentity.of(pid: pid) ?? ProcessIdentity(pid: pid, startTicks: 0)
        return Launched(process: identity, readyFd: pipeFds[0])
    }

    /// Waits for the supervisor's one line: "ready" or "error: why".
    func waitUntilReady(_ launched: Launched, name: String, timeoutSeconds: Double) throws(MSBError) {
        defer { close(launched.readyFd) }
        var text = ""
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while !text.contains("\n") {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                throw MSBError(.timeout, "sandbox \(name) did not boot within \(Int(timeoutSeconds))s",
                               hint: "see \(paths.consoleLog(name))")
            }
            var p = pollfd(fd: launched.readyFd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(remaining, 1) * 1000))
            if ready <= 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(launched.readyFd, &buffer, 4096)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        let line = text.split(separator: "\n").first.map(String.init) ?? ""
        if line == "ready" { return }
        if line.hasPrefix("error: ") {
            throw MSBError(.vmmFailure, "failed to start sandbox \(name): \(line.dropFirst(7))",
                           hint: "see \(paths.consoleLog(name)) and \(paths.supervisorLog(name))")
        }
        throw MSBError(.vmmFailure, "the supervisor of sandbox \(name) exited before the sandbox booted",
                       hint: "see \(paths.supervisorLog(name))")
    }
}
