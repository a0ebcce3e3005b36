import MSBCore

extension RemoteWire {
    /// One published port, as `msb port --format json`, `ls --format json` and
    /// `sandbox.inspect` show it.
    package struct Port: Codable, Equatable, Sendable {
        package var host_address: String
        package var host_port: Int
        package var guest_port: Int
        /// Consecutive ports from host_port and guest_port (a range); 1 for one port.
        package var count: Int
        /// "tcp" or "udp".
        package var `protocol`: String

        package init(_ port: PublishedPort) {
            host_address = port.hostAddress
            host_port = Int(port.hostPort)
            guest_port = Int(port.guestPort)
            count = Int(port.count)
            `protocol` = port.transport.rawValue
        }

        /// nil for what no publication can be (a server answering nonsense).
        package var publishedPort: PublishedPort? {
            guard let hostPort = UInt16(exactly: host_port), let guestPort = UInt16(exactly: guest_port),
                  let count = UInt16(exactly: count), count >= 1, hostPort >= 1, guestPort >= 1,
                  Int(hostPort) + Int(count) - 1 <= 65_535, Int(guestPort) + Int(count) - 1 <= 65_535,
                  let transport = TransportProtocol(rawValue: `protocol`) else { return nil }
            return PublishedPort(hostAddress: host_address, hostPort: hostPort, guestPort: guestPort, count: count, transport: transport)
        }
    }

    /// A sandbox's network policy; the sandbox's `network` is null when it has none (`--no-net`).
    package struct Network: Codable, Equatable, Sendable {
        package var ports: [Port]
        package var allow_host: Bool
        /// `--net-allow` / `--net-deny` rules as `CIDR[:PORT]` text.
        package var allowed: [String]
        package var denied: [String]
        package var unrestricted: Bool

        package init(_ policy: NetworkPolicy) {
            ports = policy.publishedPorts.map(Port.init)
            allow_host = policy.allowHost
            allowed = policy.allowed.map(\.description)
            denied = policy.denied.map(\.description)
            unrestricted = policy.unrestricted
        }

        /// What cannot be read back is left out rather than trusted.
        package var policy: NetworkPolicy {
            NetworkPolicy(publishedPorts: ports.compactMap(\.publishedPort), allowHost: allow_host,
                          allowed: allowed.compactMap { try? EgressRule.parse($0) },
                          denied: denied.compactMap { try? EgressRule.parse($0) }, unrestricted: unrestricted)
        }
    }
}
