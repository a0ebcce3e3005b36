import Glibc
import MSBCore

/// Whether the host ports a sandbox publishes can be had, checked before anything starts:
/// a taken port is a clear error at create, not a sandbox whose network process failed.
package enum HostPorts {
    /// Throws for the first publication that cannot be bound: a port below the host's
    /// unprivileged limit (passt runs unprivileged), or one another process holds.
    package static func checkAvailable(_ ports: [PublishedPort], unprivilegedFrom: Int = unprivilegedPortStart()) throws(MSBError) {
        for port in ports {
            if port.hostPort < unprivilegedFrom {
                throw MSBError(.invalidArgument, "host port \(port.hostPort) is below \(unprivilegedFrom): the sandbox's network process runs unprivileged",
                               hint: "publish a host port from \(unprivilegedFrom) up, for example -p \(max(8080, unprivilegedFrom)):\(port.guestPort)")
            }
            for hostPort in port.hostPorts {
                if let problem = bindProblem(address: port.hostAddress, port: UInt16(hostPort), transport: port.transport) {
                    throw MSBError(.alreadyExists, "cannot publish \(port.hostAddress.contains(":") ? "[\(port.hostAddress)]" : port.hostAddress):\(hostPort)/\(port.transport.rawValue): \(problem)",
                                   hint: "choose another host port, or stop what uses it")
                }
            }
        }
    }

    /// The host's `net.ipv4.ip_unprivileged_port_start` (1024 unless changed).
    package static func unprivilegedPortStart() -> Int {
        let fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 1024 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return 1024 }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).filter { $0.isASCII && $0.isNumber }
        return Int(text) ?? 1024
    }

    /// Why `address:port` cannot be bound, or nil when it can (the probe socket is closed at once).
    static func bindProblem(address: String, port: UInt16, transport: TransportProtocol) -> String? {
        guard let bytes = IPAddress.bytes(of: address) else { return "invalid address \(address)" }
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let type = transport == .tcp ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        // A TCP port in TIME_WAIT from an earlier user is free for passt (it sets SO_REUSEADDR too).
        var on: Int32 = 1
        if transport == .tcp { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) }
        let result: Int32
        if family == AF_INET {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            result = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            result = withUnsafePointer(to: &sin6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        guard result != 0 else { return nil }
        switch errno {
        case EADDRINUSE: return "the port is already in use"
        case EADDRNOTAVAIL: return "the host has no address \(address)"
        default: return String(cString: strerror(errno))
        }
    }
}
