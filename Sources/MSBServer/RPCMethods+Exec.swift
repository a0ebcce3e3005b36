import Foundation
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol

extension RPCDispatcher {
    /// Runs `command` with `args` (no shell) and returns its output as lines.
    func commandRun(_ call: RPCCall, _ p: RPC.CommandRun.Params) throws(MSBError) -> RPC.CommandRun.Result {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.sandbox(p.sandbox)
        guard !p.command.isEmpty else { throw MSBError(.invalidArgument, "invalid params: 'command' must not be empty") }
        let args = p.args ?? []
        let seconds = try RPCParams.timeoutSeconds(p.timeout, limits: configuration.limits)
        var parameters = ExecParameters(argv: [p.command] + args, timeoutMilliseconds: RPCParams.timeoutMilliseconds(seconds))
        // Extensions: the CLI's -e, -w and -u.
        if let envs = p.envs {
            for item in envs { try InputParsing.validateEnvironment(item) }
            parameters.environment = envs
        }
        if let workdir = p.workdir { parameters.workingDirectory = workdir }
        if let user = p.user { parameters.user = user }
        let output = OutputCollector(limitBytes: configuration.limits.maxOutputBytes, limitLines: configuration.limits.maxOutputLines)
        let outcome = try host.sandboxes(namespace).exec(
            name, parameters, io: ExecIO(stdinFd: nil, stdout: { output.append(.stdout, $0) }, stderr: { output.append(.stderr, $0) }))
        switch outcome {
        case .failed(let failure): output.note(redact(failure.message))
        case .exited(let status) where status.timedOut: output.note("msb: command timed out after \(secondsText(seconds))s")
        default: break
        }
        return RPC.CommandRun.Result(command: p.command, args: args, exitCode: Int(outcome.exitCode), output: output.outputLines())
    }

    /// Evaluates `code` in the sandbox's long-lived interpreter for `language`.
    func replRun(_ call: RPCCall, _ p: RPC.ReplRun.Params) throws(MSBError) -> RPC.ReplRun.Result {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.sandbox(p.sandbox)
        guard ["python", "node", "nodejs", "javascript"].contains(p.language) else {
            throw MSBError(.invalidArgument, "unsupported language '\(p.language)': use python or node (nodejs, javascript)")
        }
        let seconds = try RPCParams.timeoutSeconds(p.timeout, limits: configuration.limits)
        let output = OutputCollector(limitBytes: configuration.limits.maxOutputBytes, limitLines: configuration.limits.maxOutputLines)
        let outcome = try host.sandboxes(namespace).runCode(
            name, language: p.language, code: p.code, timeoutMilliseconds: RPCParams.timeoutMilliseconds(seconds), interruptFd: nil,
            stdout: { output.append(.stdout, $0) }, stderr: { output.append(.stderr, $0) })
        if !outcome.message.isEmpty { output.note(redact(outcome.message)) }
        return RPC.ReplRun.Result(status: outcome.status, language: p.language, output: output.outputLines())
    }
}

/// Turns streamed stdout/stderr into the contract's `[{stream, text}]` lines, in the order
/// lines were completed. Each stream keeps at most `limitBytes` and `limitLines` (`yes ''`
/// would otherwise make millions of line objects); what is cut is counted and one note says
/// so. Every byte is looked at once: splitting is linear in the output.
final class OutputCollector: @unchecked Sendable {
    enum Stream: String { case stdout, stderr }

    private struct StreamState {
        /// The line being completed.
        var partial: [UInt8] = []
        var keptBytes = 0
        var keptLines = 0
        var droppedBytes = 0
    }

    private let limitBytes: Int
    private let limitLines: Int
    private let lock = NSLock()
    private var entries: [(stream: Stream, text: String)] = []
    private var stdout = StreamState()
    private var stderr = StreamState()

    init(limitBytes: Int, limitLines: Int = ServerLimits().maxOutputLines) {
        self.limitBytes = max(0, limitBytes)
        self.limitLines = max(0, limitLines)
    }

    func append(_ stream: Stream, _ bytes: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        switch stream {
        case .stdout: append(.stdout, bytes, to: &stdout)
        case .stderr: append(.stderr, bytes, to: &stderr)
        }
    }

    private func append(_ stream: Stream, _ bytes: [UInt8], to state: inout StreamState) {
        guard state.keptLines < limitLines else {
            state.droppedBytes += bytes.count
            return
        }
        let accepted = bytes.prefix(max(0, limitBytes - state.keptBytes))
        state.droppedBytes += bytes.count - accepted.count
        var lineStart = accepted.startIndex
        while let newline = accepted[lineStart...].firstIndex(of: 10) {
            state.partial.append(contentsOf: accepted[lineStart..<newline])
            entries.append((stream, Self.text(state.partial[...])))
            state.partial.removeAll(keepingCapacity: true)
            state.keptLines += 1
            lineStart = newline + 1
            if state.keptLines >= limitLines {
                state.droppedBytes += accepted.endIndex - lineStart
                state.keptBytes += lineStart - accepted.startIndex
                return
            }
        }
        state.partial.append(contentsOf: accepted[lineStart...])
        state.keptBytes += accepted.count
    }

    /// A line msb adds on stderr (why a command failed, timed out or was cut).
    func note(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        flushPartials()
        entries.append((.stderr, text))
    }

    /// The lines in the contract's shape.
    func outputLines() -> [RPC.OutputLine] {
        lock.lock()
        defer { lock.unlock() }
        finish()
        return entries.map { RPC.OutputLine(stream: $0.stream.rawValue, text: $0.text) }
    }

    func lines() -> [[String: String]] {
        lock.lock()
        defer { lock.unlock() }
        finish()
        return entries.map { ["stream": $0.stream.rawValue, "text": $0.text] }
    }

    private func finish() {
        flushPartials()
        for stream in [Stream.stdout, .stderr] {
            let state = stream == .stdout ? stdout : stderr
            guard state.droppedBytes > 0 else { continue }
            let limit = state.keptLines >= limitLines ? "\(limitLines) lines" : "\(limitBytes) bytes"
            entries.append((.stderr, "msb: \(stream.rawValue) cut after \(limit) (\(state.droppedBytes) more bytes not kept)"))
            if stream == .stdout { stdout.droppedBytes = 0 } else { stderr.droppedBytes = 0 }
        }
    }

    private func flushPartials() {
        if !stdout.partial.isEmpty {
            entries.append((.stdout, Self.text(stdout.partial[...])))
            stdout.partial.removeAll()
        }
        if !stderr.partial.isEmpty {
            entries.append((.stderr, Self.text(stderr.partial[...])))
            stderr.partial.removeAll()
        }
    }

    /// Output is text in the contract: invalid UTF-8 becomes U+FFFD, a CR before LF goes.
    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.last == 13 ? bytes.dropLast() : bytes, as: UTF8.self)
    }
}
