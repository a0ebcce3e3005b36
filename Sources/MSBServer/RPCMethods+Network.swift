import MSBClient
import MSBCore

/// `--allow-port [ADDR:]PORT[-PORT]`: host ports a remote client may publish, on 127.0.0.1,
/// or on ADDR when the rule names one.
package struct PortAllowance: Sendable, Equatable, CustomStringConvertible {
    /// nil: loopback (127.0.0.1) only.
    package var address: String?
    package var ports: ClosedRange<Int>

    package init(address: String? = nil, ports: ClosedRange<Int>) {
        self.address = address
        self.ports = ports
    }

    /// The text `parse` reads back (the detached server gets its rules as options).
    package var description: String {
        let range = ports.count == 1 ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
        guard let address else { return range }
        return address.contains(":") ? "[\(address)]:\(range)" : "\(address):\(range)"
    }

    package static func parse(_ text: String) throws(MSBError) -> PortAllowance {
        let bad = MSBError(.invalidArgument, "invalid --allow-port '\(PrintableText.escaped(text, maxScalars: 100))'",
                           hint: "use [ADDRESS:]PORT[-PORT], for example 8000-8999, 127.0.0.1:8080 or [::1]:8000-8099")
        var address: String?
        var rangeText = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { throw bad }
            address = String(text[text.index(after: text.startIndex)..<close])
            rangeText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            address = String(text[..<colon])
            rangeText = text[text.index(after: colon)...]
            // An IPv6 address goes in brackets, as in -p.
            guard IPAddress.bytes(of: address ?? "")?.count == 4 else { throw bad }
        }
        if let address {
            guard IPAddress.bytes(of: address) != nil else { throw bad }
        }
        let ends = rangeText.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(ends.count) else { throw bad }
        var numbers: [Int] = []
        for end in ends {
            guard (1...5).contains(end.count), end.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(end),
                  (1...65_535).contains(value) else { throw bad }
            numbers.append(value)
        }
        guard let first = numbers.first, let last = numbers.last, first <= last else { throw bad }
        return PortAllowance(address: address, ports: first...last)
    }

    /// Whether the rule covers every host port of `port` on its address.
    func covers(_ port: PublishedPort) -> Bool {
        ports.contains(port.hostPorts.lowerBound) && ports.contains(port.hostPorts.upperBound) && allowsAddress(of: port)
    }

    func allowsAddress(of port: PublishedPort) -> Bool {
        guard let published = IPAddress.bytes(of: port.hostAddress) else { return false }
        if published == PortAllowance.loopback { return true }
        guard let address, let allowed = IPAddress.bytes(of: address) else { return false }
        return published == allowed
    }

    static let loopback: [UInt8] = [127, 0, 0, 1]
}

extension RPCDispatcher {
    /// More would only grow the host's filter rules and passt's command line.
    static let maxPublishedPorts = 64
    static let maxEgressRules = 64

    /// The network a `sandbox.start` / `sandbox.create` config asks for, held to what this
    /// server lets remote clients open (403 for what it does not).
    func networkPolicy(_ params: RPC.SandboxConfigParams?) throws(MSBError) -> NetworkPolicy? {
        let ports = params?.ports ?? [], allowed = params?.net_allow ?? [], denied = params?.net_deny ?? []
        let shaping = [("ports", !ports.isEmpty), ("allow_host", params?.allow_host == true), ("net_allow", !allowed.isEmpty),
                       ("net_deny", !denied.isEmpty), ("net_unrestricted", params?.net_unrestricted == true)]
            .filter { $0.1 }.map { "'\($0.0)'" }
        switch params?.network {
        case false?:
            guard shaping.isEmpty else {
                throw MSBError(.invalidArgument, "invalid params: 'network' false leaves the sandbox without a network; drop "
                               + shaping.joined(separator: ", "))
            }
            return nil
        case nil where shaping.isEmpty:
            return configuration.defaultNetwork ? NetworkPolicy() : nil
        default:
            break
        }
        guard ports.count <= Self.maxPublishedPorts else {
            throw MSBError(.invalidArgument, "invalid params: at most \(Self.maxPublishedPorts) 'ports'")
        }
        guard allowed.count + denied.count <= Self.maxEgressRules else {
            throw MSBError(.invalidArgument, "invalid params: at most \(Self.maxEgressRules) 'net_allow' and 'net_deny' rules together")
        }
        var policy = NetworkPolicy()
        for text in ports { policy.publishedPorts.append(try PublishedPort.parse(text)) }
        policy.allowHost = params?.allow_host ?? false
        for text in allowed { policy.allowed.append(try EgressRule.parse(text)) }
        for text in denied { policy.denied.append(try EgressRule.parse(text)) }
        policy.unrestricted = params?.net_unrestricted ?? false
        try policy.check()
        try checkAllowed(policy)
        return policy
    }

    /// What only the operator can open: host ports, the host itself, private ranges, no filter.
    func checkAllowed(_ policy: NetworkPolicy) throws(MSBError) {
        for port in policy.publishedPorts where !configuration.portAllowList.contains(where: { $0.covers(port) }) {
            let ports = port.hostPorts.count == 1 ? "port \(port.hostPort) is" : "ports \(port.hostPorts.lowerBound)-\(port.hostPorts.upperBound) are"
            let rangeAllowed = configuration.portAllowList.contains {
                $0.ports.contains(port.hostPorts.lowerBound) && $0.ports.contains(port.hostPorts.upperBound)
            }
            if rangeAllowed {
                throw MSBError(.accessDenied,
                               "publishing on \(port.hostAddress) is not allowed by this server: remote clients publish on 127.0.0.1 unless an --allow-port rule names the address",
                               hint: "publish on 127.0.0.1, or ask the server's operator for an --allow-port rule that names \(port.hostAddress)")
            }
            throw MSBError(.accessDenied, "\(ports) not allowed by this server (--allow-port)",
                           hint: configuration.portAllowList.isEmpty ? "this server lets remote clients publish no ports"
                               : "allowed: " + configuration.portAllowList.map(\.description).joined(separator: ", "))
        }
        if policy.allowHost && !configuration.remoteAllowHost {
            throw MSBError(.accessDenied, "--allow-host is not allowed by this server (--remote-allow-host)",
                           hint: "remote sandboxes may not reach the server's own loopback services")
        }
        if policy.unrestricted && !configuration.remoteNetUnrestricted {
            throw MSBError(.accessDenied, "--net-unrestricted is not allowed by this server (--remote-net-unrestricted)",
                           hint: "remote sandboxes keep the egress filter")
        }
        for rule in policy.allowed where !configuration.netAllowList.contains(where: { rule.lies(inside: $0) }) {
            throw MSBError(.accessDenied, "--net-allow \(rule) is not allowed by this server (--namespace-net-allow)",
                           hint: configuration.netAllowList.isEmpty ? "this server lets remote clients open no private ranges"
                               : "a rule must lie inside one of: " + configuration.netAllowList.map(\.description).joined(separator: ", "))
        }
    }
}
