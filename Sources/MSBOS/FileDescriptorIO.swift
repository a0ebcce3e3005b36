#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Blocking helpers over raw file descriptors, shared by the agent and the host.
package enum FileDescriptorIO {
    /// Writes every byte, retrying on EINTR and short writes; waits on EAGAIN.
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
            }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 1000)
                continue
            }
            throw SystemError("cannot write", errorNumber: n == 0 ? EPIPE : errno)
        }
    }

    /// One read of up to `maxBytes`; nil on EOF, empty on EAGAIN.
    package static func readSome(_ fd: Int32, maxBytes: Int = 65536) throws(SystemError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, maxBytes) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n == 0 { return nil }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return [] }
            if errno == EIO || errno == ECONNRESET { return nil }
            throw SystemError("cannot read")
        }
    }

    /// The whole content of a small file (a /proc entry), at most `limitBytes`; nil if it cannot be read.
    package static func readFile(_ path: String, limitBytes: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var content: [UInt8] = []
        while content.count < limitBytes {
            let chunk: [UInt8]?
            do { chunk = try readSome(fd, maxBytes: min(65536, limitBytes - content.count)) } catch { return nil }
            guard let chunk, !chunk.isEmpty else { break }
            content += chunk
        }
        return content
    }

    /// Up to `limitBytes` from the start of a regular file, whatever its offset.
    package static func readAll(fromStart fd: Int32, limitBytes: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: limitBytes)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, limitBytes, 0) }
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    /// A read-write file with no name (made in /tmp and unlinked at once), or -1: for a
    /// child's stderr, read after it exits, so it can never fill a pipe and stall.
    package static func anonymousFile() -> Int32 {
        var template = Array("/tmp/msb-scratch.XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.map { mkstemp($0) } ?? -1
        }
        guard fd >= 0 else { return -1 }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        template.withUnsafeBufferPointer { buffer in _ = buffer.baseAddress.map { unlink($0) } }
        return fd
    }
}
