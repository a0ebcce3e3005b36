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
    /// sandbox is no longer running (or the process is interrupted). A rotation (the file
    /// renamed to `.1`) is followed: the old file is read to its end, then the new one.
    /// `write` returns false when its reader is gone: then this returns false too.
    package func followLogs(_ name: String, pollSeconds: Double = 0.25, write: ([UInt8]) -> Bool) throws(MSBError) -> Bool {
        let path = paths.startCommandLog(name)
        var fd: Int32 = -1
        var offset = 0
        var inode: ino_t = 0
        func openCurrent(fromEnd: Bool) {
            let opened = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            var info = stat()
            guard opened >= 0, fstat(opened, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                if opened >= 0 { close(opened) }
                return
            }
            fd = opened
            inode = info.st_ino
            offset = fromEnd ? Int(clamping: info.st_size) : 0
        }
        func drain() -> Bool {
            guard fd >= 0 else { return true }
            while true {
                let bytes = BoundedLogFile.readRange(fd, from: offset, count: 64 * 1024)
                guard !bytes.isEmpty else { return true }
                offset += bytes.count
                guard write(bytes) else { return false }
            }
        }
        defer { if fd >= 0 { close(fd) } }
        openCurrent(fromEnd: true)
        while true {
            let running = [.starting, .running, .paused, .stopping].contains(try inspect(name).status)
            guard drain() else { return false }
            var info = stat()
            if stat(path, &info) == 0, fd < 0 || info.st_ino != inode {
                if fd >= 0 { close(fd); fd = -1 }
                openCurrent(fromEnd: false)
                guard drain() else { return false }
            }
            guard running else { return true }
            usleep(UInt32(pollSeconds * 1_000_000))
        }
    }
}
