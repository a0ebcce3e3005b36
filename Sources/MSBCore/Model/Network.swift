import Glibc

/// A sandbox's network: a user-mode network of its own (passt) whose traffic the host
/// filters. Public destinations are open; the host, private, link-local and multicast
/// ranges are closed unless a rule opens them (see docs/SECURITY.md, "Networking").
public struct NetworkPolicy: Codable, Equatable, Sendable {
    /// `-p [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp]`.
    public var publishedPorts: [PublishedPort]
    /// `--allow-host`: the guest may reach the host's loopback services as `host.msb.internal`.
    public var allowHost: Bool
    /// `--net-allow CIDR[:PORT]`: destinations opened although the default closes them.
    public var allowed: [EgressRule]
    /// `--net-deny CIDR[:PORT]`: destinations closed although the default opens them.
    public var denied: [EgressRule]
    /// `--net-unrestricted`: no egress filter at all (the host cannot or should not filter).
    public var unrestricted: Bool

    public init(publishedPorts: [PublishedPort] = [], allowHost: Bool = false, allowed: [EgressRule] = [],
                denied: [EgressRule] = [], unrestricted: Bool = false) {
        self.publishedPorts = publishedPorts
        self.allowHost = allowHost
        self.allowed = allowed
        self.denied = denied
        self.unrestricted = unrestricted
    }
}

/// The guest side of every sandbox network: the same in every sandbox (each has a network
/// of its own), so templates and snapshots need no per-sandbox addressing in memory.
package enum GuestAddressing {
    package static let interface = "eth0"
    package static let address = "10.0.2.15"
    package static let prefixLength = 24
    /// passt maps this address to the host's loopback (its "gateway" mapping): what
    /// `host.msb.internal` names, and what the egress filter closes without `--allow-host`.
    package static let gateway = "10.0.2.2"
    /// passt forwards DNS sent here to the host's resolver.
    package static let nameserver = "10.0.2.3"
    /// passt's own MTU: fewer, larger frames through the socket between QEMU and passt.
    package static let mtu = 65_520
    package static let hostAlias = "host.msb.internal"
}

public enum TransportProtocol: String, Codable, Sendable, CaseIterable {
    case tcp, udp
}

/// One `-p` publication: host ports (on `hostAddress`) forwarded to guest ports.
public struct PublishedPort: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 or IPv6 literal; 127.0.0.1 unless given.
    public var hostAddress: String
    public var hostPort: UInt16
    public var guestPort: UInt16
    /// How many consecutive ports from `hostPort` and `guestPort` (a range); 1 for one port.
    public var count: UInt16
    public var transport: TransportProtocol

    public init(hostAddress: String = "127.0.0.1", hostPort: UInt16, guestPort: UInt16, count: UInt16 = 1,
                transport: TransportProtocol = .tcp) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.guestPort = guestPort
        self.count = count
        self.transport = transport
    }

    /// The host ports it takes, in order.
    public var hostPorts: ClosedRange<Int> { Int(hostPort)...(Int(hostPort) + Int(count) - 1) }
    public var guestPorts: ClosedRange<Int> { Int(guestPort)...(Int(guestPort) + Int(count) - 1) }

    /// `8080/tcp -> 127.0.0.1:8080`, as `msb port` and `docker port` print it.
    public var description: String {
        let address = hostAddress.contains(":") ? "[\(hostAddress)]" : hostAddress
        return "\(Self.range(guestPorts))/\(transport.rawValue) -> \(address):\(Self.range(hostPorts))"
    }

    package static func range(_ ports: ClosedRange<Int>) -> String {
        ports.count == 1 ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
    }

    /// `[HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp]`; ports may be ranges of equal length
    /// (`8080-8081:80-81`); an IPv6 host address goes in brackets (`[::1]:8080:80`).
    public static func parse(_ text: String) throws(MSBError) -> PublishedPort {
        let bad = MSBError(.invalidArgument, "invalid port publication '\(PrintableText.escaped(text, maxScalars: 100))'",
                           hint: "use [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp], for example 8080:80 or 127.0.0.1:5353:53/udp")
        var rest = Substring(text)
        var transport = TransportProtocol.tcp
        if let slash = rest.lastIndex(of: "/") {
            guard let parsed = TransportProtocol(rawValue: String(rest[rest.index(after: slash)...]).lowercased()) else { throw bad }
            transport = parsed
            rest = rest[..<slash]
        }
        var hostAddress = "127.0.0.1"
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else { throw bad }
            hostAddress = String(rest[rest.index(after: rest.startIndex)..<close])
            guard IPAddress.family(of: hostAddress) == AF_INET6 else { throw bad }
            rest = rest[rest.index(close, offsetBy: 2)...]
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 2: break
        case 3 where hostAddress == "127.0.0.1" && !text.hasPrefix("["):
            hostAddress = String(parts[0])
            guard IPAddress.family(of: hostAddress) == AF_INET else { throw bad }
        default: throw bad
        }
        guard let host = portRange(parts[parts.count - 2]), let guest = portRange(parts[parts.count - 1]),
              host.count == guest.count else { throw bad }
        return PublishedPort(hostAddress: hostAddress, hostPort: UInt16(host.lowerBound), guestPort: UInt16(guest.lowerBound),
                             count: UInt16(host.count), transport: transport)
    }

    /// `N` or `N-M` with 1 <= N <= M <= 65535.
    private static func portRange(_ text: Substring) -> ClosedRange<Int>? {
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(ends.count) else { return nil }
        let numbers = ends.compactMap { end -> Int? in
            guard (1...5).contains(end.count), end.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(end), (1...65_535).contains(value) else { return nil }
            return value
        }
        guard numbers.count == ends.count, let first = numbers.first, let last = numbers.last, first <= last else { return nil }
        return first...last
    }

    /// Whether two publications would bind one host port (same transport, overlapping ports,
    /// and the same address or either one the wildcard).
    public func overlaps(_ other: PublishedPort) -> Bool {
        guard transport == other.transport, hostPorts.overlaps(other.hostPorts) else { return false }
        let wildcards: Set = ["0.0.0.0", "::"]
        return hostAddress == other.hostAddress || wildcards.contains(hostAddress) || wildcards.contains(other.hostAddress)
    }
}

/// `--net-allow` / `--net-deny`: a destination network, and optionally one port on it.
public struct EgressRule: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Canonical `ADDRESS/PREFIX` (host bits cleared), IPv4 or IPv6.
    public var network: String
    public var port: UInt16?

    public init(network: String, port: UInt16? = nil) {
        self.network = network
        self.port = port
    }

    public var isIPv6: Bool { network.contains(":") }
    /// The prefix length: more specific rules are applied first.
    public var prefixLength: Int { Int(network.split(separator: "/").last ?? "") ?? 0 }

    public var description: String {
        guard let port else { return network }
        return isIPv6 ? "[\(network)]:\(port)" : "\(network):\(port)"
    }

    /// `CIDR[:PORT]`: `10.20.0.0/16`, `10.30.1.5:5432` (a bare address is a /32 or /128),
    /// `[fd00::/8]:443`.
    public static func parse(_ text: String) throws(MSBError) -> EgressRule {
        let bad = MSBError(.invalidArgument, "invalid network rule '\(PrintableText.escaped(text, maxScalars: 100))'",
                           hint: "use CIDR[:PORT], for example 10.20.0.0/16, 10.30.1.5:5432 or [fd00::/8]:443")
        var cidr = Substring(text)
        var port: UInt16?
        if cidr.hasPrefix("[") {
            guard let close = cidr.firstIndex(of: "]") else { throw bad }
            let after = cidr[cidr.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = UInt16(after.dropFirst()), value > 0 else { throw bad }
                port = value
            }
            cidr = cidr[cidr.index(after: cidr.startIndex)..<close]
        } else if cidr.filter({ $0 == ":" }).count == 1, let colon = cidr.firstIndex(of: ":") {
            guard let value = UInt16(cidr[cidr.index(after: colon)...]), value > 0 else { throw bad }
            port = value
            cidr = cidr[..<colon]
        }
        let pieces = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(pieces.count) else { throw bad }
        let address = String(pieces[0])
        guard let bytes = IPAddress.bytes(of: address) else { throw bad }
        let maximum = bytes.count * 8
        var prefix = maximum
        if pieces.count == 2 {
            guard (1...3).contains(pieces[1].count), pieces[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int(pieces[1]), value <= maximum else { throw bad }
            prefix = value
        }
        let masked = bytes.enumerated().map { index, byte -> UInt8 in
            let bitsKept = min(8, max(0, prefix - index * 8))
            return bitsKept == 8 ? byte : byte & ~(UInt8(0xFF) >> bitsKept)
        }
        return EgressRule(network: "\(IPAddress.text(of: masked))/\(prefix)", port: port)
    }
}

/// IPv4 and IPv6 literals, through the C library's own parser.
package enum IPAddress {
    /// AF_INET or AF_INET6 for a literal, or nil.
    package static func family(of text: String) -> Int32? {
        guard let bytes = bytes(of: text) else { return nil }
        return bytes.count == 4 ? AF_INET : AF_INET6
    }

    /// 4 or 16 bytes for a literal, or nil.
    package static func bytes(of text: String) -> [UInt8]? {
        // Only printable ASCII: C would stop at a NUL byte and accept "10.0.0.1\0junk".
        guard !text.isEmpty, text.utf8.count <= 45, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
        return nil
    }

    /// The canonical text of 4 or 16 bytes.
    package static func text(of bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard inet_ntop(family, bytes, &buffer, socklen_t(buffer.count)) != nil else { return "" }
        return String(cString: buffer)
    }
}
