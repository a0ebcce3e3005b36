import CMSBSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Signals turned into bytes on a non-blocking pipe, so a poll loop sees them as events
/// (the handler only writes the signal number; nothing else runs in signal context).
package final class SignalPipe {
    package let readFd: Int32
    private let writeFd: Int32
    private let signals: [Int32]

    /// Routes `signals` to the pipe until `restore` (or deinit) gives them their default action.
    package init(_ signals: [Int32]) throws(SystemError) {
        var fds: [Int32] = [-1, -1]
        guard msb_pipe(&fds, 1) == 0 else { throw SystemError("cannot create a signal pipe") }
        readFd = fds[0]
        writeFd = fds[1]
        self.signals = signals
        for signo in signals { _ = msb_signal_to_pipe(signo, writeFd) }
    }

    /// The signals delivered since the last call, in order.
    package func drain() -> [Int32] {
        var delivered: [Int32] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let n = read(readFd, &buffer, buffer.count)
            guard n > 0 else { break }
            delivered += buffer[0..<n].map { Int32($0) }
        }
        return delivered
    }

    /// Gives the signals their default action back.
    package func restore() {
        for signo in signals { _ = msb_signal_default(signo) }
    }

    deinit {
        restore()
        close(readFd)
        close(writeFd)
    }
}
