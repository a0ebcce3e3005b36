import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol

/// One long-lived, non-tty `sh` in the guest that runs lines one at a time, so `cd`
/// and `export` persist between them. After each line the shell prints a marker with
/// the line's status and its working directory on stdout (and a marker on stderr, so
/// both streams are complete before the next prompt).
final class GuestShellSession: @unchecked Sendable {
    struct LineResult {
        let status: Int32
        let workingDirectory: String
    }

    private let marker = "__msb_\(UInt64.random(in: 0...UInt64.max))__"
    private let lock = NSCondition()
    private var stdoutBuffer: [UInt8] = []
    private var stderrBuffer: [UInt8] = []
    private var pendingResult: (status: Int32, cwd: String)?
    private var stderrDone = false
    private var ended: Int32?
    /// The previous line's status, restored before the next so `$?` means what it should.
    private var lastStatus: Int32 = 0
    private var failure: MSBError?
    private var inputPipe: [Int32] = [-1, -1]
    private var signalPipe: [Int32] = [-1, -1]
    private let output: (Int32, [UInt8]) -> Void

    /// `output(fd, bytes)` receives the shell's stdout (1) and stderr (2) without markers.
    init(output: @escaping (Int32, [UInt8]) -> Void) {
        self.output = output
    }

    func start(backend: any SandboxBackend, name: String, environment: [String], workingDirectory: String) throws(MSBError) {
        guard msb_pipe(&inputPipe, 0) == 0, msb_pipe(&signalPipe, 0) == 0 else {
            throw MSBError(.internalError, "cannot create pipes")
        }
        let parameters = ExecParameters(argv: ["/bin/sh"], environment: environment, workingDirectory: workingDirectory)
        let io = ExecIO(
            stdinFd: inputPipe[0],
            stdout: { [self] bytes in received(bytes, fd: 1) },
            stderr: { [self] bytes in received(bytes, fd: 2) },
            signalFd: signalPipe[0])
        let box = UncheckedBackend(backend: backend, io: io)
        Thread.detachNewThread { [self] in
            let outcome: ExecOutcome
            do { outcome = try box.backend.exec(name, parameters, io: box.io) } catch {
                finish(code: 1, failure: error as? MSBError)
                return
            }
            if case .failed(let failure) = outcome {
                finish(code: outcome.exitCode, failure: MSBError(.agentFailure, failure.message))
            } else {
                finish(code: outcome.exitCode, failure: nil)
            }
        }
        // A Ctrl-C interrupts the running command, not the shell.
        try send("trap 'true' INT; __msb_rc() { return \"$1\"; }\n")
    }

    private func finish(code: Int32, failure: MSBError?) {
        lock.lock()
        flushHeldOutput()
        ended = code
        self.failure = failure
        lock.broadcast()
        lock.unlock()
    }

    private func send(_ text: String) throws(MSBError) {
        do { try FileDescriptorIO.writeAll(inputPipe[1], Array(text.utf8)) } catch {
            throw MSBError(.agentFailure, "the guest shell has ended")
        }
    }

    /// Runs one line; nil when the shell itself ended (then `exitCode` says how).
    func run(_ line: String, onInterrupt: () -> Bool) throws(MSBError) -> LineResult? {
        lock.lock()
        pendingResult = nil
        stderrDone = false
        let alreadyEnded = ended != nil
        lock.unlock()
        if alreadyEnded { return nil }
        let quoted = "'" + line.replacingOccurrences(of: "'", with: "'\\''") + "'"
        // eval confines syntax errors to the line; </dev/null keeps commands off our input.
        try send("__msb_rc \(lastStatus); command eval \(quoted) </dev/null; printf '%s %d %s\\n' \(marker) \"$?\" \"$PWD\"; printf '%s\\n' \(marker) >&2\n")
        lock.lock()
        defer { lock.unlock() }
        while ended == nil && (pendingResult == nil || !stderrDone) {
            lock.unlock()
            if onInterrupt() {
                interrupt()
                output(1, [10])
            }
            lock.lock()
            _ = lock.wait(until: Date().addingTimeInterval(0.05))
        }
        if let failure, ended != nil, pendingResult == nil { throw failure }
        guard let result = pendingResult else { return nil }
        lastStatus = result.status
        return LineResult(status: result.status, workingDirectory: result.cwd)
    }

    var exitCode: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return ended
    }

    func interrupt() {
        var signo = UInt8(SIGINT)
        _ = write(signalPipe[1], &signo, 1)
    }

    /// Closes the shell's stdin (it exits) and waits for the exec to end.
    func close() {
        if inputPipe[1] >= 0 { _ = Glibc.close(inputPipe[1]); inputPipe[1] = -1 }
        lock.lock()
        while ended == nil { _ = lock.wait(until: Date().addingTimeInterval(0.1)) }
        lock.unlock()
    }

    // MARK: Output parsing (called on the exec thread)

    private func received(_ bytes: [UInt8], fd: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if fd == 1 { stdoutBuffer += bytes } else { stderrBuffer += bytes }
        scan(fd: fd)
        lock.broadcast()
    }

    private func scan(fd: Int32) {
        let markerBytes = Array(marker.utf8)
        var buffer = fd == 1 ? stdoutBuffer : stderrBuffer
        defer { if fd == 1 { stdoutBuffer = buffer } else { stderrBuffer = buffer } }
        while true {
            if let start = ByteSearch.find(markerBytes, in: buffer) {
                let range = start..<(start + markerBytes.count)
                emit(fd, Array(buffer[..<range.lowerBound]))
                guard let newline = buffer[range.upperBound...].firstIndex(of: 10) else {
                    buffer.removeFirst(range.lowerBound)
                    return
                }
                let trailer = String(decoding: buffer[range.upperBound..<newline], as: UTF8.self)
                buffer.removeFirst(newline + 1)
                if fd == 1 {
                    let parts = trailer.dropFirst().split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                    pendingResult = (Int32(parts.first ?? "") ?? 1, parts.count > 1 ? String(parts[1]) : "/")
                } else {
                    stderrDone = true
                }
                continue
            }
            // Hold back a tail that could be the start of a marker split across reads.
            let keep = ByteSearch.partialMatchAtEnd(buffer, of: markerBytes)
            emit(fd, Array(buffer[..<(buffer.count - keep)]))
            buffer.removeFirst(buffer.count - keep)
            return
        }
    }

    private func flushHeldOutput() {
        emit(1, stdoutBuffer); stdoutBuffer = []
        emit(2, stderrBuffer); stderrBuffer = []
    }

    private func emit(_ fd: Int32, _ bytes: [UInt8]) {
        if !bytes.isEmpty { output(fd, bytes) }
    }
}

/// Hands the backend and I/O to the exec thread, which alone uses them from then on.
struct UncheckedBackend: @unchecked Sendable {
    let backend: any SandboxBackend
    let io: ExecIO
}
