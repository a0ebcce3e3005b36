#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a child process ended, decoded once from waitpid's status word.
package enum WaitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    package init(rawStatus status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    package var exitCode: Int32? {
        if case .exited(let code) = self { return code }
        return nil
    }

    package var signal: Int32? {
        if case .signaled(let signo) = self { return signo }
        return nil
    }

    package var succeeded: Bool { self == .exited(0) }

    /// The status a shell reports: the code, or 128+N after signal N.
    package var shellStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signo): 128 + signo
        }
    }

    package var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signo): "killed by signal \(signo)"
        }
    }
}
