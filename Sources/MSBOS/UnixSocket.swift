import CMSBSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Unix stream sockets: the supervisor's control socket and QEMU's chardev socket.
package enum UnixSocket {
    /// sun_path holds 108 bytes including the terminating NUL.
    package static let maxPathBytes = 107

    private static func address(_ path: String) throws(SystemError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathBytes else {
            throw SystemError("socket path is too long (\(bytes.count) bytes, limit \(maxPathBytes)): \(path)",
                              errorNumber: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    package static func connect(path: String) throws(SystemError) -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("cannot create a socket") }
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let error = SystemError("cannot connect to \(path)")
            close(fd)
            throw error
        }
        return fd
    }

    /// Binds and listens; the socket file is made owner-only before anyone can connect.
    package static func listen(path: String) throws(SystemError) -> Int32 {
        var addr = try address(path)
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("cannot create a socket") }
        let oldMask = umask(0o177)
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(oldMask)
        guard result == 0, Glibc.listen(fd, 64) == 0 else {
            let error = SystemError("cannot listen on \(path)")
            close(fd)
            throw error
        }
        chmod(path, 0o600)
        return fd
    }
}
