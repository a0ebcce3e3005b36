/// What the CLI and the server both check of a network policy before anything is started,
/// and the `-p` text a publication is sent as.
extension NetworkPolicy {
    /// Everything below, in one call.
    package func check() throws(MSBError) {
        try checkPublishedPortsDistinct()
        try checkRulesApply()
    }

    /// `--net-unrestricted` turns the egress filter off: rules for it would silently do
    /// nothing, so they are refused.
    package func checkRulesApply() throws(MSBError) {
        guard unrestricted, !(allowed.isEmpty && denied.isEmpty) else { return }
        let rules = [allowed.isEmpty ? nil : "--net-allow", denied.isEmpty ? nil : "--net-deny"].compactMap { $0 }
        throw MSBError(.invalidArgument,
                       "--net-unrestricted turns the egress filter off, so \(rules.joined(separator: " and ")) would do nothing; drop one or the other")
    }

    /// Two publications that would bind one host port are refused up front (the second
    /// bind would fail half-way through a start otherwise).
    package func checkPublishedPortsDistinct() throws(MSBError) {
        for (index, port) in publishedPorts.enumerated() {
            for other in publishedPorts[(index + 1)...] where port.overlaps(other) {
                let shared = max(port.hostPorts.lowerBound, other.hostPorts.lowerBound)
                throw MSBError(.invalidArgument,
                               "published ports overlap: \(port.specification) and \(other.specification) both bind host port \(shared)/\(port.transport.rawValue)",
                               hint: "publish each host port once")
            }
        }
    }
}

extension PublishedPort {
    /// The `-p` text that `parse` reads back as this publication: the address always
    /// written out, the transport always named (`127.0.0.1:8080:80/tcp`, `[::1]:53:53/udp`).
    package var specification: String {
        let address = hostAddress.contains(":") ? "[\(hostAddress)]" : hostAddress
        return "\(address):\(Self.range(hostPorts)):\(Self.range(guestPorts))/\(transport.rawValue)"
    }
}

extension EgressRule {
    /// Whether every destination this rule names lies inside `outer` (same family, at
    /// least as long a prefix, the same leading bits), on `outer`'s port if it has one.
    package func lies(inside outer: EgressRule) -> Bool {
        guard isIPv6 == outer.isIPv6, prefixLength >= outer.prefixLength else { return false }
        if let outerPort = outer.port, port != outerPort { return false }
        guard let inner = IPAddress.bytes(of: address), let outerBytes = IPAddress.bytes(of: outer.address),
              inner.count == outerBytes.count else { return false }
        var bitsLeft = outer.prefixLength
        for (a, b) in zip(inner, outerBytes) where bitsLeft > 0 {
            let mask: UInt8 = bitsLeft >= 8 ? 0xFF : ~(UInt8(0xFF) >> bitsLeft)
            if a & mask != b & mask { return false }
            bitsLeft -= 8
        }
        return true
    }

    /// The network's address, without its prefix length.
    var address: String { String(network.split(separator: "/").first ?? "") }
}
