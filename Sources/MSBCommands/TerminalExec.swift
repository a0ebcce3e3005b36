import CMSBSys
import Foundation
import MSBCore
import MSBProtocol

/// Connects an exec to this process's stdin, stdout, stderr and signals.
enum TerminalExec {
    static func run(_ backend: any SandboxBackend, name: String, _ parameters: ExecParameters, forceStdin: Bool) throws(MSBError) -> Int32 {
        // Like docker exec: stdin is forwarded when it is a pipe or file, or with -i.
        let stdinUsable = fcntl(0, F_GETFD) >= 0
        let stdinFd: Int32? = stdinUsable && (forceStdin || isatty(0) == 0) ? 0 : nil
        var signalPipe: [Int32] = [-1, -1]
        var signalFd: Int32?
        if msb_pipe(&signalPipe, 1) == 0 {
            for signo in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] { _ = msb_signal_to_pipe(signo, signalPipe[1]) }
            signalFd = signalPipe[0]
        }
        defer { for signo in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] { _ = msb_signal_default(signo) } }
        let io = ExecIO(
            stdinFd: stdinFd,
            stdout: { bytes in write(1, bytes) },
            stderr: { bytes in write(2, bytes) },
            signalFd: signalFd)
        let outcome = try backend.exec(name, parameters, io: io)
        if case .failed(let failure) = outcome {
            CommandContext.writeError("error: \(failure.message)")
        }
        return outcome.exitCode
    }

    /// A reader that went away (`| head`) ends us the way SIGPIPE would; the supervisor
    /// then kills the guest process.
    private static func write(_ fd: Int32, _ bytes: [UInt8]) {
        do { try FileDescriptorIO.writeAll(fd, bytes) } catch { exit(141) }
    }
}
