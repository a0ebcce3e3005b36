import Glibc

/// A host file of what a guest writes (its serial console, its start command's output),
/// 0600, that cannot grow without bound: the guest may write forever. Once the file would
/// pass `capBytes` it becomes `PATH.1` (replacing the older one) and a new one starts, so
/// at most twice the cap is kept: the latest output.
package final class BoundedLogFile {
    /// Each of the start command log's two files (`exec.log`): 8 MiB kept in all.
    package static let startCommandCapBytes = 4 << 20

    private let path: String
    private let capBytes: Int
    private var fd: Int32 = -1
    private var sizeBytes = 0

    /// Opens (creating, 0600) the file at `path` for appending, or empty with `truncate`;
    /// no link is followed.
    package init(path: String, capBytes: Int, truncate: Bool = false) {
        self.path = path
        self.capBytes = max(capBytes, 1)
        reopen(truncating: truncate)
    }

    deinit { if fd >= 0 { close(fd) } }

    private func reopen(truncating: Bool = false) {
        if fd >= 0 { close(fd) }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (truncating ? O_TRUNC : 0), 0o600)
        var info = stat()
        sizeBytes = fd >= 0 && fstat(fd, &info) == 0 ? Int(clamping: info.st_size) : 0
        if fd >= 0 { _ = fchmod(fd, 0o600) }
    }

    /// A line of msb's own (`[msb] …`), so a reader tells it from the command's output.
    package func note(_ text: String) { append(Array(("[msb] " + text + "\n").utf8)) }

    /// Appends the bytes, rotating first when they would pass the cap. A failing write
    /// (disk full) loses the bytes: the guest's output never blocks its reader.
    package func append(_ bytes: [UInt8]) {
        var rest = bytes[...]
        while !rest.isEmpty {
            if sizeBytes >= capBytes {
                _ = rename(path, path + ".1")
                reopen()
            }
            guard fd >= 0 else { return }
            let chunk = rest.prefix(capBytes - sizeBytes)
            let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            sizeBytes += written
            rest = rest.dropFirst(written)
        }
    }

    /// The last `maxBytes` of the log (its `.1` half first), and whether older bytes were
    /// left out. Missing files read as empty (a sandbox without a start command has none).
    package static func read(path: String, maxBytes: Int) -> (bytes: [UInt8], truncated: Bool) {
        let current = tail(path, maxBytes: maxBytes)
        if current.truncated { return (current.bytes, true) }
        let older = tail(path + ".1", maxBytes: maxBytes - current.bytes.count)
        return (older.bytes + current.bytes, older.truncated)
    }

    /// The last `maxBytes` of one file, read from a descriptor opened without following links.
    private static func tail(_ path: String, maxBytes: Int) -> (bytes: [UInt8], truncated: Bool) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return ([], false) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return ([], false) }
        let size = Int(clamping: info.st_size)
        let start = max(0, size - max(0, maxBytes))
        let bytes = readRange(fd, from: start, count: size - start)
        return (bytes, start > 0)
    }

    /// Writes what is added to the log at `path` after its current end, polling, until
    /// `keepGoing` says no (asked before each round, so what came before is still written).
    /// A rotation is followed: the old file is read to its end, then the new one from its
    /// start. False when `write` returns false (its reader is gone).
    package static func follow(path: String, pollSeconds: Double, keepGoing: () -> Bool, write: ([UInt8]) -> Bool) -> Bool {
        var fd: Int32 = -1
        var offset = 0
        var inode: ino_t = 0
        defer { if fd >= 0 { close(fd) } }
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
                let bytes = readRange(fd, from: offset, count: 64 * 1024)
                guard !bytes.isEmpty else { return true }
                offset += bytes.count
                guard write(bytes) else { return false }
            }
        }
        openCurrent(fromEnd: true)
        while true {
            let going = keepGoing()
            guard drain() else { return false }
            var info = stat()
            if stat(path, &info) == 0, fd < 0 || info.st_ino != inode {
                if fd >= 0 {
                    close(fd)
                    fd = -1
                }
                openCurrent(fromEnd: false)
                guard drain() else { return false }
            }
            guard going else { return true }
            usleep(UInt32(clamping: Int(pollSeconds * 1_000_000)))
        }
    }

    /// Up to `count` bytes from `offset` (fewer if the file is shorter now).
    package static func readRange(_ fd: Int32, from offset: Int, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: max(0, count))
        var done = 0
        while done < bytes.count {
            let got = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return pread(fd, base + done, buffer.count - done, off_t(offset + done))
            }
            guard got > 0 else { break }
            done += got
        }
        return Array(bytes.prefix(done))
    }
}
