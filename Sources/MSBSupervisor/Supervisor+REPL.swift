import Foundation
import MSBCore
import MSBOS
import MSBProtocol
import MSBVMM

/// REPL requests: queued on the language's interpreter, output relayed to the caller.
extension Supervisor {
    func submitREPL(language: String, code: String, client: SupervisorClient, localId: UInt32) {
        if let reason = unavailableReason {
            client.peer.send(Envelope(id: localId, .replDone(ReplOutcome(status: "error", message: reason))))
            return
        }
        let interpreter = interpreters.submit(language: language, code: code, client: client.peer.fd, localId: localId) {
            argv, environment in
            let id = allocateRequestId()
            agent?.exec(id, ExecRequest(
                argv: argv, environment: defaultEnvironment + environment,
                workingDirectory: defaultWorkingDirectory, attachStdin: true, user: defaultUser))
            return id
        }
        guard let interpreter else {
            client.peer.send(Envelope(id: localId, .replDone(ReplOutcome(
                status: "error", message: "unsupported language '\(language)': use python or node"))))
            return
        }
        dispatch(interpreter)
    }

    private func dispatch(_ interpreter: InterpreterPool.Interpreter) {
        guard let input = interpreters.nextInput(interpreter) else { return }
        agent?.stdin(interpreter.execId, input)
    }

    func handleInterpreter(_ interpreter: InterpreterPool.Interpreter, _ message: Message) {
        switch message {
        case .stdout(let bytes), .stderr(let bytes):
            let isStdout = if case .stdout = message { true } else { false }
            let (output, done) = interpreters.consume(interpreter, bytes: bytes, isStdout: isStdout)
            if let current = interpreter.current, !output.isEmpty {
                clients[current.client]?.peer.send(Envelope(id: current.localId, isStdout ? .stdout(output) : .stderr(output)))
            }
            if done, let finished = interpreters.finishCurrent(interpreter) {
                clients[finished.client]?.peer.send(Envelope(id: finished.localId, .replDone(ReplOutcome(status: finished.status))))
                dispatch(interpreter)
            }
        case .exited(let status):
            let how = status.signal != 0 ? "was killed by signal \(status.signal)" : "exited with status \(status.code)"
            endInterpreter(interpreter, "the \(interpreter.language) interpreter \(how); it starts afresh on the next run")
        case .execFailed(let failure):
            let hint = failure.kind == .notFound ? " (this sandbox's image has no \(interpreter.language); use --image \(interpreter.language))" : ""
            endInterpreter(interpreter, "cannot start the \(interpreter.language) interpreter: \(failure.message)\(hint)")
        default:
            break
        }
    }

    func endInterpreter(_ interpreter: InterpreterPool.Interpreter, _ message: String) {
        for waiting in interpreters.remove(interpreter) {
            clients[waiting.client]?.peer.send(Envelope(id: waiting.localId, .replDone(ReplOutcome(status: "error", message: message))))
        }
    }
}

/// The sandbox's long-lived interpreters, one per language, run in the guest as ordinary
/// execs and fed by the supervisor, which outlives every CLI call: so state persists
/// between `msb repl` invocations. Evaluations on one interpreter run one at a time.
final class InterpreterPool {
    final class Interpreter {
        let language: String
        let execId: UInt32
        let marker: [UInt8]
        /// Kept so a snapshot can hand the interpreter to the supervisors of its forks.
        let nonce: String
        var queue: [(client: Int32, localId: UInt32, code: String)] = []
        var current: (client: Int32, localId: UInt32)?
        var stdoutBuffer: [UInt8] = []
        var stderrBuffer: [UInt8] = []
        var status: String?
        var stderrDone = false

        init(language: String, execId: UInt32, nonce: String) {
            self.language = language
            self.execId = execId
            self.nonce = nonce
            self.marker = Array(("\u{1e}MSB" + nonce).utf8)
        }
    }

    private(set) var interpreters: [String: Interpreter] = [:]
    /// The longest status line after an end marker ("success", an exception name...).
    static let maxTrailerBytes = 256

    func interpreter(forExec id: UInt32) -> Interpreter? { interpreters.values.first { $0.execId == id } }

    /// Queues code; starts the interpreter first when there is none.
    /// `startExec(argv, env)` sends the exec to the agent and returns its id.
    func submit(language: String, code: String, client: Int32, localId: UInt32,
                startExec: ([String], [String]) -> UInt32) -> Interpreter? {
        guard let driver = InterpreterDrivers.driver(for: language) else { return nil }
        let interpreter: Interpreter
        if let existing = interpreters[driver.displayName] {
            interpreter = existing
        } else {
            let nonce = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            let id = startExec(driver.argv, ["MSB_REPL_NONCE=\(nonce)"])
            interpreter = Interpreter(language: driver.displayName, execId: id, nonce: nonce)
            interpreters[driver.displayName] = interpreter
        }
        interpreter.queue.append((client, localId, code))
        return interpreter
    }

    /// Takes over an idle interpreter already running in the guest (a fork's, saved with
    /// its snapshot): the next evaluation goes to it, with its variables.
    func adopt(language: String, execId: UInt32, nonce: String) {
        guard InterpreterDrivers.driver(for: language) != nil else { return }
        interpreters[language] = Interpreter(language: language, execId: execId, nonce: nonce)
    }

    /// The next request to send, if the interpreter is idle: the bytes for its stdin.
    func nextInput(_ interpreter: Interpreter) -> [UInt8]? {
        guard interpreter.current == nil, !interpreter.queue.isEmpty else { return nil }
        let next = interpreter.queue.removeFirst()
        interpreter.current = (next.client, next.localId)
        interpreter.status = nil
        interpreter.stderrDone = false
        let code = Array(next.code.utf8)
        return Array("\(code.count)\n".utf8) + code
    }

    /// Splits interpreter output into what belongs to the user and the end markers.
    /// Returns the user's bytes, and true once the evaluation is complete.
    func consume(_ interpreter: Interpreter, bytes: [UInt8], isStdout: Bool) -> (output: [UInt8], done: Bool) {
        var buffer = (isStdout ? interpreter.stdoutBuffer : interpreter.stderrBuffer) + bytes
        var output: [UInt8] = []
        let marker = interpreter.marker
        while true {
            if let start = ByteSearch.find(marker, in: buffer) {
                output += buffer[..<start]
                guard let newline = buffer[(start + marker.count)...].firstIndex(of: 10) else {
                    // Guest code can read the nonce and print the marker itself: a "marker" whose
                    // status line never ends is not ours. Pass it through instead of holding an
                    // unbounded buffer (and searching it again on every read).
                    if buffer.count - start - marker.count > Self.maxTrailerBytes {
                        output += buffer[start..<(start + marker.count)]
                        buffer = Array(buffer[(start + marker.count)...])
                        continue
                    }
                    buffer = Array(buffer[start...])
                    break
                }
                let trailer = String(decoding: buffer[(start + marker.count)..<newline], as: UTF8.self)
                buffer = Array(buffer[(newline + 1)...])
                if isStdout {
                    interpreter.status = trailer.trimmingCharacters(in: .whitespaces).isEmpty
                        ? "success" : trailer.trimmingCharacters(in: .whitespaces)
                } else {
                    interpreter.stderrDone = true
                }
                continue
            }
            // Keep a tail that may be the start of a marker split across reads.
            let keep = ByteSearch.partialMatchAtEnd(buffer, of: marker)
            output += buffer[..<(buffer.count - keep)]
            buffer = Array(buffer[(buffer.count - keep)...])
            break
        }
        if isStdout { interpreter.stdoutBuffer = buffer } else { interpreter.stderrBuffer = buffer }
        return (output, interpreter.status != nil && interpreter.stderrDone)
    }

    /// Ends the current evaluation; the caller then sends the next input, if any.
    func finishCurrent(_ interpreter: Interpreter) -> (client: Int32, localId: UInt32, status: String)? {
        guard let current = interpreter.current else { return nil }
        interpreter.current = nil
        return (current.client, current.localId, interpreter.status ?? "error")
    }

    /// The interpreter process ended: every waiting request learns it, and the next
    /// request starts a fresh interpreter.
    func remove(_ interpreter: Interpreter) -> [(client: Int32, localId: UInt32)] {
        interpreters[interpreter.language] = nil
        var waiting = interpreter.queue.map { ($0.client, $0.localId) }
        if let current = interpreter.current { waiting.insert(current, at: 0) }
        return waiting
    }
}
