import Foundation
import Glibc
import MSBOS
import MSBProtocol

/// The guest side of a fake VM's agent channel, played by the test on its own thread: it
/// answers the supervisor's hello, sends heartbeats while `heartbeats` is on, hands each
/// exec to `onExec`, and records everything it receives. `silent` makes it a wedged agent.
final class ScriptedAgent: @unchecked Sendable {
    let fd: Int32
    private let lock = NSLock()
    private var received: [Envelope] = []
    private var running = true
    private var loopEnded = false
    var heartbeats = true
    var silent = false
    /// What the agent answers the host's setup with ("" is success).
    var setupProblem = ""
    /// Called on the agent's thread for each exec: (request id, request, agent).
    var onExec: (UInt32, ExecRequest, ScriptedAgent) -> Void = { id, _, agent in
        agent.send(id, .exited(ExitStatus(code: 0)))
    }

    /// Called on the agent's thread for each stats request.
    var onStats: (UInt32, ScriptedAgent) -> Void = { id, agent in agent.send(id, .stats(GuestStats())) }

    /// Called on the agent's thread for each file request; by default "no such file".
    var onFile: (UInt32, FileRequest, ScriptedAgent) -> Void = { id, _, agent in
        agent.send(id, .fileReply(.failure(.notFound, "No such file or directory")))
    }

    init(fd: Int32) { self.fd = fd }

    func start() {
        Thread.detachNewThread { [self] in loop() }
    }

    func send(_ id: UInt32, _ message: Message) {
        lock.withLock {
            guard !silent, running else { return }
            try? FileDescriptorIO.writeAll(fd, Frame.encode(Envelope(id: id, message)))
        }
    }

    /// Everything the supervisor sent so far.
    var messages: [Envelope] { lock.withLock { received } }

    /// Closes the channel: the supervisor sees EOF, as when QEMU exits. The descriptor is
    /// closed by whoever is last, the loop or this call: closing it under a loop that is still
    /// polling would let the loop read from whatever socket reuses the number next (another
    /// test's), stealing its bytes.
    func closeChannel() {
        lock.withLock {
            guard running else { return }
            running = false
            if loopEnded { close(fd) } else { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func loop() {
        defer {
            lock.withLock {
                loopEnded = true
                if !running { close(fd) }
            }
        }
        var decoder = FrameDecoder()
        var lastBeat = MonotonicClock.now()
        while lock.withLock({ running }) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 50)
            if p.revents != 0 {
                guard let bytes = try? FileDescriptorIO.readSome(fd), !bytes.isEmpty else { return }
                decoder.append(bytes)
                while let envelope = try? decoder.next() { handle(envelope) }
            }
            if heartbeats, MonotonicClock.now() - lastBeat >= 0.2 {
                send(0, .heartbeat)
                lastBeat = MonotonicClock.now()
            }
        }
    }

    private func handle(_ envelope: Envelope) {
        lock.withLock { received.append(envelope) }
        switch envelope.message {
        case .hello(let hello): send(envelope.id, .helloReply(Hello(version: hello.version, software: "scripted-agent")))
        case .setup: send(envelope.id, .setupDone(setupProblem))
        case .exec(let request): onExec(envelope.id, request, self)
        case .statsRequest: onStats(envelope.id, self)
        case .fileRequest(let request): onFile(envelope.id, request, self)
        default: break
        }
    }
}

extension ScriptedAgent {
    /// Writes bytes that need not be a valid frame, as a hostile agent would.
    func sendRaw(_ bytes: [UInt8]) {
        lock.withLock {
            guard running else { return }
            try? FileDescriptorIO.writeAll(fd, bytes)
        }
    }

    /// Writes `frame` again and again for `seconds`, as far as the channel takes it without
    /// blocking: a flood that stalls when the supervisor stops reading. Returns the bytes taken.
    func flood(frame: [UInt8], seconds: Double) -> Int {
        let deadline = MonotonicClock.now() + seconds
        var written = 0, offset = 0
        while MonotonicClock.now() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                written += n
                offset = (offset + n) % frame.count
            } else if errno != EAGAIN {
                break
            }
        }
        return written
    }
}
