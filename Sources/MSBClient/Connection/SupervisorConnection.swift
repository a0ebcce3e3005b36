import CMSBSys
import Glibc
import MSBCore
import MSBOS
import MSBProtocol

/// The client's side of the control protocol: one framed connection to a sandbox's
/// supervisor (its Unix socket, or a stream upgraded through an msb server). Output is
/// queued and written as the peer takes it, so one loop streams stdin and output at once
/// with no threads. Every wait ends by a deadline: the caller's, or the liveness check,
/// which pings a supervisor that has been quiet and gives up on one that does not answer.
package final class SupervisorConnection {
    package struct Liveness: Sendable {
        /// Quiet this long: send a ping.
        package var pingAfterSeconds: Double
        /// A ping unanswered this long: the supervisor is taken for gone.
        package var answerWithinSeconds: Double

        package init(pingAfterSeconds: Double, answerWithinSeconds: Double) {
            self.pingAfterSeconds = pingAfterSeconds
            self.answerWithinSeconds = answerWithinSeconds
        }

        package static let standard = Liveness(pingAfterSeconds: 10, answerWithinSeconds: 30)
    }

    package enum Event {
        case message(Envelope)
        /// One of the descriptors the caller asked to watch is readable.
        case readable(Int32)
        case deadlinePassed
    }

    /// Pings use the last id; requests count up from 1.
    private static let pingId = UInt32.max
    private let fd: Int32
    private var decoder = FrameDecoder()
    private var outbound = OutboundBuffer()
    private let liveness: Liveness
    private var lastHeard: Double
    private var pingSentAt: Double?
    /// Set once the supervisor closed the connection (what a stop ends with).
    package private(set) var closedByPeer = false
    /// Says what was going on when the connection broke, for the error.
    package var lostMessage = "lost the connection to the sandbox"

    /// Takes ownership of `fd`, a connected stream socket.
    package init(fd: Int32, liveness: Liveness = .standard) {
        self.fd = fd
        self.liveness = liveness
        lastHeard = MonotonicClock.now()
        _ = msb_set_nonblocking(fd, 1)
    }

    deinit { close(fd) }

    /// Queues a message; it is written by the next wait.
    package func send(_ message: Message, id: UInt32) {
        outbound.append(Frame.encode(Envelope(id: id, message)))
    }

    /// Bytes queued that the supervisor has not taken yet.
    package var pendingOutputBytes: Int { outbound.pendingBytes }

    /// Writes everything queued before the caller goes away (a detach, a last signal),
    /// waiting at most `timeoutSeconds` for the supervisor to take it.
    package func flush(timeoutSeconds: Double = 2) {
        let deadline = MonotonicClock.now() + timeoutSeconds
        while outbound.pendingBytes > 0 && outbound.flush(to: fd) && outbound.pendingBytes > 0 {
            guard MonotonicClock.now() < deadline else { return }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, MonotonicClock.milliseconds(until: deadline))
        }
    }

    /// Writes what is queued and waits for the next message, a watched descriptor or `deadline`
    /// (monotonic seconds; nil waits as long as the supervisor is alive).
    package func next(until deadline: Double?, watching watched: [Int32] = []) throws(MSBError) -> Event {
        while true {
            let decoded: Envelope?
            do { decoded = try decoder.next() } catch {
                throw MSBError(.agentFailure, "garbled reply from the sandbox supervisor: \(error)")
            }
            if let envelope = decoded {
                if envelope.id == Self.pingId, case .helloReply = envelope.message { continue }
                return .message(envelope)
            }
            guard outbound.flush(to: fd) else { throw lost() }
            let now = MonotonicClock.now()
            if let deadline, now >= deadline { return .deadlinePassed }
            var wakeAt = pingSentAt.map { $0 + liveness.answerWithinSeconds } ?? lastHeard + liveness.pingAfterSeconds
            if let deadline { wakeAt = min(wakeAt, deadline) }
            let writeInterest = outbound.pendingBytes > 0 ? POLLOUT : 0
            var fds = [pollfd(fd: fd, events: Int16(POLLIN | writeInterest), revents: 0)]
            fds += watched.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), MonotonicClock.milliseconds(until: wakeAt))
            if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let bytes: [UInt8]?
                do { bytes = try FileDescriptorIO.readSome(fd) } catch { bytes = nil }
                guard let bytes else {
                    closedByPeer = true
                    throw lost()
                }
                if !bytes.isEmpty {
                    decoder.append(bytes)
                    lastHeard = MonotonicClock.now()
                    pingSentAt = nil
                }
            }
            if let ready = fds.dropFirst().first(where: { $0.revents != 0 }) { return .readable(ready.fd) }
            try checkLiveness()
        }
    }

    private func checkLiveness() throws(MSBError) {
        let now = MonotonicClock.now()
        if let sent = pingSentAt {
            guard now < sent + liveness.answerWithinSeconds else {
                throw MSBError(.timeout, "the sandbox supervisor stopped answering (no reply to a liveness check within "
                               + "\(secondsText(liveness.answerWithinSeconds))s)",
                               hint: "the host may be overloaded; run 'msb ls' to see the sandbox's state")
            }
        } else if now >= lastHeard + liveness.pingAfterSeconds {
            send(.hello(Hello(software: "msb")), id: Self.pingId)
            pingSentAt = now
        }
    }

    private func lost() -> MSBError {
        MSBError(.agentFailure, lostMessage, hint: "the sandbox may have stopped; run 'msb ls' to check")
    }

    // MARK: Requests

    /// Starts a command; its session streams the I/O.
    package func exec(_ request: ExecRequest) -> ExecSession {
        ExecSession(connection: self, request: request)
    }

    /// Sends one request and reads until `answer` picks a result from a message (nil: not
    /// yet), or `timeoutSeconds` pass: then the error says the sandbox did not `late` in time.
    private func request<Result>(_ message: Message, timeoutSeconds: Double, late: String,
                                 _ answer: (Message) throws(MSBError) -> Result?) throws(MSBError) -> Result {
        send(message, id: 1)
        let deadline = MonotonicClock.now() + timeoutSeconds
        while true {
            switch try next(until: deadline) {
            case .message(let envelope): if let result = try answer(envelope.message) { return result }
            case .deadlinePassed: throw MSBError(.timeout, "the sandbox did not \(late) within \(secondsText(timeoutSeconds))s")
            case .readable: continue
            }
        }
    }

    /// The guest's resource use, with the host's CPU figure the supervisor adds.
    package func stats(timeoutSeconds: Double = 10) throws(MSBError) -> GuestStats {
        try request(.statsRequest, timeoutSeconds: timeoutSeconds, late: "report its resource use") { (message: Message) throws(MSBError) in
            switch message {
            case .stats(let stats): return stats
            case .error(let text): throw MSBError(.agentFailure, "the sandbox refused the request: \(text)")
            default: return nil
            }
        }
    }

    /// Stops or continues the guest's vCPUs; returns once the supervisor says it is done.
    package func setPaused(_ paused: Bool, timeoutSeconds: Double = 15) throws(MSBError) {
        try request(.setPaused(paused), timeoutSeconds: timeoutSeconds, late: paused ? "pause" : "resume") { (message: Message) throws(MSBError) in
            switch message {
            case .pausedState(let state) where state == paused: return ()
            case .error(let text): throw MSBError(.invalidState, text)
            default: return nil
            }
        }
    }

    /// Asks the supervisor to drain the sandbox; returns once it is draining.
    package func drain(timeoutMilliseconds: UInt64, answerSeconds: Double = 15) throws(MSBError) {
        try request(.drainSandbox(timeoutMilliseconds: timeoutMilliseconds), timeoutSeconds: answerSeconds,
                    late: "start draining") { (message: Message) throws(MSBError) in
            switch message {
            case .drainStarted: return ()
            case .error(let text): throw MSBError(.invalidState, text)
            default: return nil
            }
        }
    }

    /// Asks the supervisor to save the whole guest into `directory` (a work directory of
    /// the sandbox's snapshot store); returns once it is there.
    package func saveSnapshot(directory: String, timeoutSeconds: Double = 300) throws(MSBError) {
        try request(.saveSnapshot(directory: directory), timeoutSeconds: timeoutSeconds,
                    late: "save the snapshot") { (message: Message) throws(MSBError) in
            switch message {
            case .snapshotSaved(let problem) where problem.isEmpty: return ()
            case .snapshotSaved(let problem): throw MSBError(.vmmFailure, PrintableText.escaped(problem, maxScalars: 1000))
            case .error(let text): throw MSBError(.invalidState, text)
            default: return nil
            }
        }
    }

    /// Asks the supervisor to stop the sandbox and waits until it confirms, or closes the
    /// connection as it exits.
    package func stop(force: Bool, timeoutSeconds: Double) throws(MSBError) {
        send(.stopSandbox(force: force), id: 0)
        let deadline = MonotonicClock.now() + timeoutSeconds
        do throws(MSBError) {
            while true {
                switch try next(until: deadline) {
                case .message(let envelope): if case .stopped = envelope.message { return }
                case .deadlinePassed:
                    throw MSBError(.timeout, "the sandbox did not stop within \(secondsText(timeoutSeconds))s")
                case .readable: continue
                }
            }
        } catch {
            if closedByPeer { return }
            throw error
        }
    }
}
