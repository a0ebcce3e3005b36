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
final class GuestShellSession {
    struct LineResult {
        let status: Int32
        let workingDirectory: String
    }

    private let marker = "__msb_\(UInt64.random(in: 0...UInt64.max))__"
    private var session: ExecSession?
    private var stdoutBuffer: [UInt8] = []
    private var stderrBuffer: [UInt8] = []
    private var pendingResult: (status: Int32, cwd: String)?
    private var stderrDone = false
    /// How the shell ended, once it did.
    private(set) var exitCode: Int32?
    /// The previous line's status, restored before the next so `$?` means what it should.
    private var lastStatus: Int32 = 0
    private let output: (Int32, [UInt8]) -> Void

    /// `output(fd, bytes)` receives the shell's stdout (1) and stderr (2) without markers.
    init(output: @escaping (Int32, [UInt8]) -> Void) {
        self.output = output
    }

    /// `shell`: the sandbox's configured shell (`create --shell`); it must read POSIX sh syntax.
    func start(backend: any SandboxBackend, name: String, shell: String = "/bin/sh", environment: [String],
               workingDirectory: String) throws(MSBError) {
        let parameters = ExecParameters(argv: [shell], environment: environment, workingDirectory: workingDirectory)
        session = try backend.openExec(name, parameters, attachStdin: true)
        // A Ctrl-C interrupts the running command, not the shell.
        send("trap 'true' INT; __msb_rc() { return \"$1\"; }\n")
    }

    private func send(_ text: String) { session?.writeStdin(Array(text.utf8)) }

    /// Runs one line; nil when the shell itself ended (then `exitCode` says how). A byte on
    /// `interruptFd` for which `takeInterrupt` says yes interrupts the line's command.
    func run(_ line: String, interruptFd: Int32? = nil, takeInterrupt: () -> Bool = { false }) throws(MSBError) -> LineResult? {
        guard let session, exitCode == nil else { return nil }
        pendingResult = nil
        stderrDone = false
        let quoted = "'" + line.replacingOccurrences(of: "'", with: "'\\''") + "'"
        // eval confines syntax errors to the line; </dev/null keeps commands off our input.
        send("__msb_rc \(lastStatus); command eval \(quoted) </dev/null; printf '%s %d %s\\n' \(marker) \"$?\" \"$PWD\"; printf '%s\\n' \(marker) >&2\n")
        while pendingResult == nil || !stderrDone {
            switch try session.next(watching: interruptFd.map { [$0] } ?? []) {
            case .stdout(let bytes): received(bytes, fd: 1)
            case .stderr(let bytes): received(bytes, fd: 2)
            case .ended(let outcome):
                flushHeldOutput()
                exitCode = outcome.exitCode
                if case .failed(let failure) = outcome { throw MSBError(.agentFailure, failure.message) }
                return nil
            case .readable:
                if takeInterrupt() {
                    session.signal(SIGINT)
                    output(1, [10])
                }
            }
        }
        guard let result = pendingResult else { return nil }
        lastStatus = result.status
        return LineResult(status: result.status, workingDirectory: result.cwd)
    }

    /// Closes the shell's stdin (it exits) and waits for it to end.
    func close() {
        guard let session, exitCode == nil else { return }
        session.closeStdin()
        while exitCode == nil {
            switch try? session.next() {
            case .stdout(let bytes)?: received(bytes, fd: 1)
            case .stderr(let bytes)?: received(bytes, fd: 2)
            case .ended(let outcome)?: exitCode = outcome.exitCode
            case .readable?: continue
            case nil: exitCode = 1
            }
        }
        flushHeldOutput()
    }

    // MARK: Output parsing

    private func received(_ bytes: [UInt8], fd: Int32) {
        if fd == 1 { stdoutBuffer += bytes } else { stderrBuffer += bytes }
        scan(fd: fd)
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
