#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Frames queued for a non-blocking descriptor, written as the peer takes them.
/// Shared by the agent's port and the supervisor's connections.
package struct OutboundBuffer {
    private var bytes: [UInt8] = []
    private var start = 0

    package init() {}

    package var pendingBytes: Int { bytes.count - start }

    package mutating func append(_ frame: [UInt8]) { bytes.append(contentsOf: frame) }

    /// Writes what `fd` takes now (at most 256 KiB a call). False when the peer is gone.
    package mutating func flush(to fd: Int32) -> Bool {
        var alive = true
        while pendingBytes > 0 {
            let n = bytes.withUnsafeBytes { raw in Self.write(fd, raw.baseAddress.map { $0 + start }, min(pendingBytes, 256 * 1024)) }
            if n > 0 { start += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            alive = false
            break
        }
        // Reclaim what was written, without copying on every partial write.
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: bytes.count < (1 << 20))
            start = 0
        } else if start > (1 << 20) {
            bytes.removeFirst(start)
            start = 0
        }
        return alive
    }

    /// A socket whose peer is gone must fail the write, not kill the process with SIGPIPE
    /// (whoever embeds us may not ignore it); other descriptors (the agent's port) use write.
    private static func write(_ fd: Int32, _ pointer: UnsafeRawPointer?, _ count: Int) -> Int {
        let n = send(fd, pointer, count, Int32(MSG_NOSIGNAL))
        if n < 0 && errno == ENOTSOCK { return Glibc.write(fd, pointer, count) }
        return n
    }
}
