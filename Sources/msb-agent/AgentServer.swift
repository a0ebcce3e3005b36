import CMSBSys
import Glibc
import MSBOS
import MSBProtocol

/// The agent's single-threaded event loop: one virtio-serial port to the host, many
/// sessions. Everything is non-blocking and driven by poll(2), so a slow session can
/// never stall another, and output is buffered with bounds that push back on producers.
final class AgentServer {
    static let software = "msb-agent 1"
    /// Stop reading child output while this much is queued for the host.
    static let outboundHighWater = 8 << 20
    /// Stop reading the port while a session has this much stdin it could not yet write.
    static let stdinHighWater = 4 << 20
    /// How long output is drained after the process was reaped.
    static let drainGraceSeconds = 0.5

    private let portPath: String
    private var portFd: Int32 = -1
    private var decoder = FrameDecoder()
    private var outbound = OutboundBuffer()
    private var sessions: [UInt32: AgentSession] = [:]
    private let childSignalFd: Int32
    private var shutdownRequestedId: UInt32?
    /// When the last heartbeat went out; nil until a host said hello on this port.
    private var lastHeartbeat: Double?

    init(portPath: String, childSignalFd: Int32) {
        self.portPath = portPath
        self.childSignalFd = childSignalFd
    }

    func run() -> Never {
        while true {
            if portFd < 0 { openPort() }
            pollOnce()
            if let id = shutdownRequestedId, outboundPending == 0 { powerOff(ackId: id) }
        }
    }

    private var outboundPending: Int { outbound.pendingBytes }

    private func openPort() {
        while true {
            portFd = open(portPath, O_RDWR | O_NONBLOCK | O_CLOEXEC)
            if portFd >= 0 { break }
            log("cannot open \(portPath): \(errnoText())")
            usleep(100_000)
        }
        decoder = FrameDecoder()
        outbound = OutboundBuffer()
    }

    /// The host went away: its sessions can no longer be reported, so end them.
    private func resetPort() {
        if portFd >= 0 { close(portFd) }
        portFd = -1
        for session in sessions.values {
            session.signal(SIGKILL)
            session.closeAll()
        }
        sessions.removeAll()
        lastHeartbeat = nil
        usleep(20_000)
    }

    private func send(_ id: UInt32, _ message: Message) {
        outbound.append(Frame.encode(Envelope(id: id, message)))
    }

    private func pollOnce() {
        var fds: [pollfd] = []
        var owners: [(UInt32, Int32)] = []  // session id, fd
        let stdinBacklog = sessions.values.contains { $0.pendingStdin.count > Self.stdinHighWater }
        var portEvents: Int16 = 0
        if !stdinBacklog { portEvents |= Int16(POLLIN) }
        if outboundPending > 0 { portEvents |= Int16(POLLOUT) }
        fds.append(pollfd(fd: portFd, events: portEvents, revents: 0))
        fds.append(pollfd(fd: childSignalFd, events: Int16(POLLIN), revents: 0))
        let acceptOutput = outboundPending < Self.outboundHighWater
        for session in sessions.values {
            if acceptOutput {
                for fd in [session.stdoutFd, session.stderrFd] where fd >= 0 {
                    fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                    owners.append((session.id, fd))
                }
            }
            if session.stdinFd >= 0 && !session.pendingStdin.isEmpty {
                fds.append(pollfd(fd: session.stdinFd, events: Int16(POLLOUT), revents: 0))
                owners.append((session.id, session.stdinFd))
            }
        }
        let timeout = pollTimeoutMilliseconds()
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready < 0 && errno != EINTR { log("poll failed: \(errnoText())") }

        if fds[1].revents != 0 { drainSignalPipe(); reapChildren() }
        if fds[0].revents & Int16(POLLOUT) != 0 { flushOutbound() }
        if fds[0].revents & Int16(POLLIN) != 0 {
            readPort()
        } else if fds[0].revents & Int16(POLLHUP | POLLERR) != 0 {
            resetPort()
            return
        }
        for (index, (sessionId, fd)) in owners.enumerated() {
            let revents = fds[index + 2].revents
            guard revents != 0, let session = sessions[sessionId] else { continue }
            if fd == session.stdinFd && fds[index + 2].events == Int16(POLLOUT) {
                flushStdin(session)
            } else {
                readOutput(session, fd: fd)
            }
        }
        enforceDeadlines()
        finishSessions()
        sendHeartbeatIfDue()
        if outboundPending > 0 { flushOutbound() }
    }

    /// Sent even while the port is not read (a session's stdin backlog), so the host can
    /// tell a busy agent from a dead one.
    private func sendHeartbeatIfDue() {
        let now = MonotonicClock.now()
        guard let last = lastHeartbeat, now - last >= Heartbeat.intervalSeconds else { return }
        send(0, .heartbeat)
        lastHeartbeat = now
    }

    private func pollTimeoutMilliseconds() -> Int32 {
        var nearest: Double?
        let now = MonotonicClock.now()
        for session in sessions.values {
            if let d = session.deadline, !session.timedOut { nearest = min(nearest ?? d, d) }
            if let r = session.reapedAt { nearest = min(nearest ?? r + Self.drainGraceSeconds, r + Self.drainGraceSeconds) }
        }
        guard let nearest else { return 1000 }
        return Int32(max(0, min(1000, (nearest - now) * 1000 + 1)))
    }

    private func readPort() {
        do {
            guard let bytes = try FileDescriptorIO.readSome(portFd) else { resetPort(); return }
            decoder.append(bytes)
            while let envelope = try decoder.next() { handle(envelope) }
        } catch {
            // A corrupt stream cannot be resynchronised: drop the connection state.
            log("protocol error from host: \(error); resetting the port")
            resetPort()
        }
    }

    /// A write error means the host went away; poll reports it as POLLHUP next round.
    private func flushOutbound() {
        _ = outbound.flush(to: portFd)
    }

    private func handle(_ envelope: Envelope) {
        let id = envelope.id
        switch envelope.message {
        case .hello(let hello):
            send(id, .helloReply(Hello(version: min(hello.version, Hello.currentVersion), software: Self.software)))
            lastHeartbeat = lastHeartbeat ?? MonotonicClock.now()
        case .exec(let request):
            guard sessions[id] == nil else {
                send(id, .error("request id \(id) is already in use"))
                return
            }
            switch ProcessLauncher.launch(id: id, request: request, now: MonotonicClock.now()) {
            case .success(let session):
                sessions[id] = session
                send(id, .started(pid: session.pid))
            case .failure(let failure):
                send(id, .execFailed(failure))
            }
        case .stdin(let bytes):
            guard let session = sessions[id] else { return }
            if session.stdinFd < 0 { return }
            session.pendingStdin.append(contentsOf: bytes)
            flushStdin(session)
        case .stdinClose:
            guard let session = sessions[id] else { return }
            session.stdinCloseRequested = true
            if session.pendingStdin.isEmpty { session.closeStdin() }
        case .signal(let signo):
            guard let session = sessions[id], signo > 0, signo < 65 else { return }
            session.signal(signo)
        case .resize(let rows, let cols):
            guard let session = sessions[id], session.isTTY, session.stdoutFd >= 0 else { return }
            _ = msb_set_winsize(session.stdoutFd, rows, cols)
            session.signal(SIGWINCH)
        case .setup(let setup):
            send(id, .setupDone(GuestIdentity.apply(setup)))
        case .statsRequest:
            send(id, .stats(GuestStatistics.collect()))
        case .fileRequest(let request):
            send(id, .fileReply(GuestFiles.serve(request)))
        case .shutdown:
            for session in sessions.values { session.signal(SIGKILL) }
            sync()
            shutdownRequestedId = id
        default:
            send(id, .error("unexpected message from host"))
        }
    }

    private func flushStdin(_ session: AgentSession) {
        while !session.pendingStdin.isEmpty && session.stdinFd >= 0 {
            let n = session.pendingStdin.withUnsafeBytes { write(session.stdinFd, $0.baseAddress, $0.count) }
            if n > 0 { session.pendingStdin.removeFirst(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            // EPIPE: the process closed its stdin; what is left can never be delivered.
            session.pendingStdin.removeAll()
            session.closeStdin()
            return
        }
        if session.pendingStdin.isEmpty && session.stdinCloseRequested { session.closeStdin() }
    }

    private func readOutput(_ session: AgentSession, fd: Int32) {
        let isStdout = fd == session.stdoutFd
        let bytes: [UInt8]?
        do { bytes = try FileDescriptorIO.readSome(fd, maxBytes: Frame.maxChunkBytes) } catch { bytes = nil }
        guard let bytes else {
            close(fd)
            if isStdout {
                session.stdoutFd = -1
                // A PTY's master is also its stdin: it is closed now.
                if session.isTTY { session.stdinFd = -1 }
            } else {
                session.stderrFd = -1
            }
            return
        }
        guard !bytes.isEmpty else { return }
        send(session.id, isStdout ? .stdout(bytes) : .stderr(bytes))
    }

    private func drainSignalPipe() {
        var buf = [UInt8](repeating: 0, count: 64)
        while read(childSignalFd, &buf, 64) > 0 {}
    }

    /// PID 1 reaps every child, including orphans re-parented to it.
    private func reapChildren() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { break }
            guard let session = sessions.values.first(where: { $0.pid == pid }) else { continue }
            let exited = status & 0x7f == 0
            let code = exited ? (status >> 8) & 0xff : 0
            let signo = exited ? 0 : status & 0x7f
            session.exitStatus = ExitStatus(code: code, signal: signo, timedOut: session.timedOut)
            session.reapedAt = MonotonicClock.now()
            // Nobody can read stdin any more.
            session.pendingStdin.removeAll()
            if !session.isTTY { session.closeStdin() }
        }
    }

    private func enforceDeadlines() {
        let now = MonotonicClock.now()
        for session in sessions.values where !session.timedOut && session.exitStatus == nil {
            if let deadline = session.deadline, now >= deadline {
                session.timedOut = true
                session.signal(SIGKILL)
            }
        }
    }

    private func finishSessions() {
        let now = MonotonicClock.now()
        for session in Array(sessions.values) {
            guard let status = session.exitStatus, let reapedAt = session.reapedAt else { continue }
            if session.outputOpen && now < reapedAt + Self.drainGraceSeconds { continue }
            if session.outputOpen {
                // Drain whatever is already buffered before giving up on the stream.
                for fd in [session.stdoutFd, session.stderrFd] where fd >= 0 { readOutput(session, fd: fd) }
            }
            session.closeAll()
            send(session.id, .exited(status))
            sessions[session.id] = nil
        }
    }

    private func powerOff(ackId: UInt32) -> Never {
        send(ackId, .shutdownAck)
        flushOutbound()
        kill(-1, SIGTERM)
        usleep(100_000)
        kill(-1, SIGKILL)
        sync()
        // QEMU runs with -no-reboot, so a restart request ends the VM.
        _ = msb_reboot_restart()
        _exit(0)
    }
}

func log(_ text: String) {
    let line = Array("msb-agent: \(text)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
