import CMSBSys
import Foundation

/// Unix stream sockets: the supervisor's control socket and QEMU's chardev socket.
package enum UnixSocket {
    /// sun_path holds 108 bytes including the terminating NUL.
    static let maxPathBytes = 107

    private static func address(_ path: String) throws(MSBError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathBytes else {
            throw MSBError(.invalidArgument, "socket path is too long (\(bytes.count) bytes, limit \(maxPathBytes)): \(path)",
                           hint: "use a shorter MSB_HOME")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    package static func connect(path: String) throws(MSBError) -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MSBError(.internalError, "socket() failed: \(String(cString: strerror(errno)))") }
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MSBError(.internalError, "cannot connect to \(path): \(reason)")
        }
        return fd
    }

    /// Binds and listens; the socket file is made owner-only before anyone can connect.
    package static func listen(path: String) throws(MSBError) -> Int32 {
        var addr = try address(path)
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MSBError(.internalError, "socket() failed: \(String(cString: strerror(errno)))") }
        let oldMask = umask(0o177)
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(oldMask)
        guard result == 0, Glibc.listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MSBError(.internalError, "cannot listen on \(path): \(reason)")
        }
        chmod(path, 0o600)
        return fd
    }
}
