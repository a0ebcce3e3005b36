import Foundation
import MSBCore
import MSBProtocol

/// The SDKs' `scripts` and `exec`, done by the supervisor at every start because it
/// outlives every client: the scripts are written to `/.msb/scripts/NAME` through the
/// Files API requests the agent already serves, then the start command runs as
/// `/bin/sh -c CMD` like any exec, its output appended to the sandbox's `exec.log`.
///
/// Neither counts as a client being served (Supervisor+Idle): a sandbox whose main
/// process runs on still stops after `--idle-timeout` with no exec or REPL run.
extension Supervisor {
    /// Sends the script writes, then the start command. The agent serves requests in
    /// order, so the scripts exist before the command starts.
    func startGuestCommands(_ config: SandboxConfig) {
        guard let agent else { return }
        // Scripts a sandbox.start dropped must not linger: the directory is made afresh. A
        // marker on the host says whether an earlier start wrote any, so a sandbox that never
        // had scripts costs no request at all.
        let directory = InputParsing.guestScriptsDirectory
        let marker = paths.sandboxDirectory(name) + "/scripts-written"
        let scripts = config.scripts ?? [:]
        var requests: [FileRequest] = []
        if !scripts.isEmpty || access(marker, F_OK) == 0 { requests.append(FileRequest(.remove, path: directory, recursive: true)) }
        if scripts.isEmpty {
            unlink(marker)
        } else {
            close(open(marker, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600))
            requests.append(FileRequest(.makeDirectory, path: directory, mode: 0o755, recursive: true))
            for (script, command) in scripts.sorted(by: { $0.key < $1.key }) {
                requests.append(FileRequest(.write, path: InputParsing.guestScriptPath(script),
                                            data: InputParsing.guestScriptContent(command), mode: 0o755))
            }
        }
        for request in requests {
            let id = allocateRequestId()
            scriptRequestIds.insert(id)
            agent.fileRequest(id, request)
        }
        guard let command = config.startCommand else { return }
        let log = BoundedLogFile(path: paths.startCommandLog(name), capBytes: BoundedLogFile.startCommandCapBytes)
        log.note("exec started at \(Date().ISO8601Format()): /bin/sh -c \(PrintableText.escaped(command, maxScalars: 200))")
        let id = allocateRequestId()
        startCommand = (id, log)
        agent.exec(id, ExecRequest(argv: ["/bin/sh", "-c", command], environment: defaultEnvironment,
                                   workingDirectory: defaultWorkingDirectory, user: defaultUser))
    }

    /// Takes the agent's answers that belong to the scripts or the start command; false
    /// for everything else.
    func handleStartCommandMessage(_ envelope: Envelope) -> Bool {
        if scriptRequestIds.contains(envelope.id) {
            guard case .fileReply(let reply) = envelope.message else { return true }
            scriptRequestIds.remove(envelope.id)
            // The remove finds nothing on most starts: not a problem.
            if let error = reply.error, error != .notFound {
                log("writing the scripts into the guest failed: \(error) \(PrintableText.escaped(reply.message, maxScalars: 200))")
            }
            return true
        }
        guard let running = startCommand, running.execId == envelope.id else { return false }
        switch envelope.message {
        case .stdout(let bytes), .stderr(let bytes):
            running.log.append(bytes)
        case .exited(let status):
            let how = status.signal != 0 ? "was killed by signal \(status.signal)" : "exited with status \(status.code)"
            running.log.note("exec \(how)")
            startCommand = nil
        case .execFailed(let failure):
            running.log.note("exec could not start: \(PrintableText.escaped(failure.message, maxScalars: 200))")
            startCommand = nil
        default:
            break
        }
        return true
    }
}
