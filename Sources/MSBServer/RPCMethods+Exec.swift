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
        var parameters = ExecParameters(argv: [p.command] + args, timeoutMilliseconds: UInt64(seconds * 1000))
        // Extensions: the CLI's -e, -w and -u.
        if let envs = p.envs {
            for item in envs { try InputParsing.validateEnvironment(item) }
            parameters.environment = envs
        }
        if let workdir = p.workdir { parameters.workingDirectory = workdir }
        if let user = p.user { parameters.user = user }
        let output = OutputCollector(limitBytes: configuration.limits.maxOutputBytes)
        let outcome = try host.backend(namespace).exec(
            name, parameters, io: ExecIO(stdinFd: nil, stdout: { output.append(.stdout, $0) }, stderr: { output.append(.stderr, $0) }))
        switch outcome {
        case .failed(let failure): output.note(failure.message)
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
        let output = OutputCollector(limitBytes: configuration.limits.maxOutputBytes)
        let outcome = try host.backend(namespace).runCode(
            name, language: p.language, code: p.code, timeoutMilliseconds: UInt64(seconds * 1000), interruptFd: nil,
            stdout: { output.append(.stdout, $0) }, stderr: { output.append(.stderr, $0) })
        if !outcome.message.isEmpty { output.note(outcome.message) }
        return RPC.ReplRun.Result(status: outcome.status, language: p.language, output: output.outputLines())
    }
}

/// Turns streamed stdout/stderr into the contract's `[{stream, text}]` lines, in the order
/// lines were completed, each stream keeping at most `limitBytes` (then one note says so).
final class OutputCollector: @unchecked Sendable {
    enum Stream: String { case stdout, stderr }

    private let limitBytes: Int
    private let lock = NSLock()
    private var entries: [[String: String]] = []
    private var partial: [Stream: [UInt8]] = [:]
    private var kept: [Stream: Int] = [:]
    private var dropped: [Stream: Int] = [:]

    init(limitBytes: Int) { self.limitBytes = limitBytes }

    func append(_ stream: Stream, _ bytes: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        let room = max(0, limitBytes - kept[stream, default: 0])
        let accepted = bytes.prefix(room)
        kept[stream, default: 0] += accepted.count
        dropped[stream, default: 0] += bytes.count - accepted.count
        var buffer = partial[stream, default: []] + accepted
        while let newline = buffer.firstIndex(of: 10) {
            entries.append(["stream": stream.rawValue, "text": Self.text(buffer[..<newline])])
            buffer.removeSubrange(...newline)
        }
        partial[stream] = buffer
    }

    /// A line msb adds on stderr (why a command failed, timed out or was cut).
    func note(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        flushPartials()
        entries.append(["stream": "stderr", "text": text])
    }

    /// The lines in the contract's shape.
    func outputLines() -> [RPC.OutputLine] {
        lines().map { RPC.OutputLine(stream: $0["stream"] ?? "stdout", text: $0["text"] ?? "") }
    }

    func lines() -> [[String: String]] {
        lock.lock()
        defer { lock.unlock() }
        flushPartials()
        for stream in [Stream.stdout, .stderr] where dropped[stream, default: 0] > 0 {
            entries.append(["stream": "stderr", "text": "msb: \(stream.rawValue) cut after \(limitBytes) bytes (\(dropped[stream]!) more bytes not kept)"])
            dropped[stream] = 0
        }
        return entries
    }

    private func flushPartials() {
        for stream in [Stream.stdout, .stderr] where !(partial[stream]?.isEmpty ?? true) {
            entries.append(["stream": stream.rawValue, "text": Self.text(partial[stream]![...])])
            partial[stream] = []
        }
    }

    /// Output is text in the contract: invalid UTF-8 becomes U+FFFD, a CR before LF goes.
    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.last == 13 ? bytes.dropLast() : bytes, as: UTF8.self)
    }
}
