import Foundation
import Glibc
import MSBCore

/// What `msb logs` prints: the tail of the start command's log.
package struct SandboxLog: Equatable, Sendable {
    package var bytes: [UInt8]
    /// Older bytes exist that were left out.
    package var truncated: Bool

    package init(bytes: [UInt8], truncated: Bool) {
        self.bytes = bytes
        self.truncated = truncated
    }

    /// The last `lines` lines (a last line without a newline counts as one).
    package func lastLines(_ lines: Int) -> [UInt8] {
        guard lines > 0 else { return [] }
        var newlines = 0
        var index = bytes.endIndex
        if bytes.last == 10 { index -= 1 }
        while index > bytes.startIndex {
            if bytes[index - 1] == 10 {
                newlines += 1
                if newlines == lines { return Array(bytes[index...]) }
            }
            index -= 1
        }
        return bytes
    }
}

/// The start command's log on this host (BoundedLogFile writes it, in the supervisor).
extension LocalBackend {
    package func logs(_ name: String, maxBytes: Int) throws(MSBError) -> SandboxLog {
        _ = try existing(name)
        let (bytes, truncated) = BoundedLogFile.read(path: paths.startCommandLog(name), maxBytes: max(0, maxBytes))
        return SandboxLog(bytes: bytes, truncated: truncated)
    }

    /// `msb logs -f`: writes what is added to the log after its current end, until the
    /// sandbox is no longer running (or the process is interrupted; see
    /// `BoundedLogFile.follow`). False when `write`'s reader is gone.
    package func followLogs(_ name: String, pollSeconds: Double = 0.25, write: ([UInt8]) -> Bool) throws(MSBError) -> Bool {
        _ = try existing(name)
        var failure: MSBError?
        let followed = BoundedLogFile.follow(path: paths.startCommandLog(name), pollSeconds: pollSeconds, keepGoing: {
            do throws(MSBError) {
                return [.starting, .running, .paused, .stopping].contains(try inspect(name).status)
            } catch {
                failure = error
                return false
            }
        }, write: write)
        if let failure { throw failure }
        return followed
    }
}
