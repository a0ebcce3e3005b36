import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol

/// Connects an exec to this process's stdin, stdout, stderr, terminal and signals.
package enum TerminalExec {
    static let defaultDetachKeys = "ctrl-]"

    static func run(_ backend: any SandboxBackend, name: String, _ parameters: ExecParameters, forceStdin: Bool,
                    detachKeys: String = defaultDetachKeys) throws(MSBError) -> Int32 {
        if parameters.tty { return try runWithTerminal(backend, name: name, parameters, detachKeys: detachKeys) }
        // Like docker exec: stdin is forwarded when it is a pipe or file, or with -i.
        let stdinUsable = fcntl(0, F_GETFD) >= 0
        let stdinFd: Int32? = stdinUsable && (forceStdin || isatty(0) == 0) ? 0 : nil
        // SIGINT, SIGTERM, SIGHUP and SIGQUIT received by msb go to the guest process group.
        let signals = try signalPipe([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        defer { signals.restore() }  // also keeps the pipe alive until the exec is over
        let io = ExecIO(
            stdinFd: stdinFd,
            stdout: { bytes in write(1, bytes) },
            stderr: { bytes in write(2, bytes) },
            signalFd: signals.readFd)
        return report(try backend.exec(name, parameters, io: io))
    }

    /// A PTY session: the local terminal goes raw (restored on every way out), its size
    /// follows SIGWINCH, and keys such as Ctrl-C and Ctrl-Z travel to the guest as bytes.
    private static func runWithTerminal(_ backend: any SandboxBackend, name: String, _ parameters: ExecParameters,
                                        detachKeys: String) throws(MSBError) -> Int32 {
        guard isatty(0) != 0 else {
            throw MSBError(.invalidArgument, "the input device is not a TTY", hint: "drop -t, or run from a terminal")
        }
        let keys = try parseDetachKeys(detachKeys)
        var parameters = parameters
        if let size = windowSize() { (parameters.rows, parameters.cols) = size }
        if let term = ProcessInfo.processInfo.environment["TERM"], !term.isEmpty {
            parameters.environment.insert("TERM=\(term)", at: 0)
        }
        let resizes = try signalPipe([SIGWINCH])
        defer { resizes.restore() }  // also keeps the pipe alive until the exec is over
        guard msb_tty_raw(0) == 0 else {
            throw MSBError(.internalError, "cannot put the terminal in raw mode: \(String(cString: strerror(errno)))")
        }
        defer { msb_tty_restore() }
        let detector = DetachKeyDetector(keys: keys)
        let io = ExecIO(
            stdinFd: 0,
            stdout: { bytes in write(1, bytes) },
            stderr: { bytes in write(2, bytes) },
            signalFd: resizes.readFd,
            inputFilter: { detector.filter($0) },
            signalHandler: { _, session in
                if let size = windowSize() { session.resize(rows: size.rows, cols: size.cols) }
            })
        let outcome = try backend.exec(name, parameters, io: io)
        msb_tty_restore()
        if outcome == .detached {
            CommandContext.writeError("\r\nmsb: detached; the process keeps running in sandbox \(name)")
        }
        return report(outcome)
    }

    private static func report(_ outcome: ExecOutcome) -> Int32 {
        if case .failed(let failure) = outcome {
            CommandContext.writeError("error: \(failure.message)")
        }
        return outcome.exitCode
    }

    static func windowSize() -> (rows: UInt16, cols: UInt16)? {
        var rows: UInt16 = 0, cols: UInt16 = 0
        guard msb_get_winsize(0, &rows, &cols) == 0 || msb_get_winsize(1, &rows, &cols) == 0, rows > 0, cols > 0 else { return nil }
        return (rows, cols)
    }

    /// Signals turned into bytes on a pipe, which the exec's loop reads.
    static func signalPipe(_ signals: [Int32]) throws(MSBError) -> SignalPipe {
        do { return try SignalPipe(signals) } catch { throw MSBError(.internalError, error.description) }
    }

    /// Docker's format: comma-separated keys, each `ctrl-X` or one character.
    package static func parseDetachKeys(_ text: String) throws(MSBError) -> [UInt8] {
        var keys: [UInt8] = []
        for part in text.split(separator: ",") {
            let key = part.lowercased()
            if key.hasPrefix("ctrl-"), key.count == 6, let c = key.last?.asciiValue {
                let upper = c >= 97 && c <= 122 ? c - 32 : c
                guard upper >= 64 && upper <= 95 else { throw badKeys(text) }
                keys.append(upper & 0x1f)
            } else if part.count == 1, let c = part.first?.asciiValue {
                keys.append(c)
            } else {
                throw badKeys(text)
            }
        }
        guard !keys.isEmpty else { throw badKeys(text) }
        return keys
    }

    private static func badKeys(_ text: String) -> MSBError {
        MSBError(.invalidArgument, "invalid detach keys '\(text)'", hint: "use keys like ctrl-] or ctrl-p,ctrl-q")
    }

    /// A reader that went away (`| head`) ends us the way SIGPIPE would; the supervisor
    /// then kills the guest process.
    private static func write(_ fd: Int32, _ bytes: [UInt8]) {
        do { try FileDescriptorIO.writeAll(fd, bytes) } catch { exit(141) }
    }
}

/// Watches stdin for the detach keys: bytes that could start the sequence are held back
/// until they prove to be something else.
final class DetachKeyDetector {
    private let keys: [UInt8]
    private var matched = 0

    init(keys: [UInt8]) { self.keys = keys }

    func filter(_ chunk: [UInt8]) -> (forward: [UInt8], detach: Bool) {
        guard !keys.isEmpty else { return (chunk, false) }
        var forward: [UInt8] = []
        for byte in chunk {
            if byte == keys[matched] {
                matched += 1
                if matched == keys.count { return (forward, true) }
            } else {
                forward += keys[0..<matched]
                matched = byte == keys[0] ? 1 : 0
                if matched == 0 { forward.append(byte) }
            }
        }
        return (forward, false)
    }
}
