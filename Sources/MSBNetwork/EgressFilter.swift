import MSBCore

/// The nftables rules that hold a sandbox's traffic to its policy. passt turns the guest's
/// packets into ordinary socket calls of its own process, so every packet that leaves the
/// sandbox is sent by a socket of the sandbox's passt uid: one table per sandbox, matching
/// only that uid in the output hook, sees all of it. (These hosts use cgroup v1, so sockets
/// cannot be matched by cgroup; a uid of its own per sandbox is what scopes the rules.)
///
/// Order, first match wins: replies on connections already allowed (published ports
/// included); the sandbox's own rules, most specific first, a deny before an allow of the
/// same size; the host's loopback with `--allow-host`; the host's resolvers (passt forwards
/// the guest's DNS there); then the host itself and the non-public ranges are rejected.
/// Anything else (public destinations) is accepted.
package struct EgressFilter: Equatable, Sendable {
    package var tableName: String
    package var uid: UInt32
    package var policy: NetworkPolicy
    /// The host's DNS resolvers (from /etc/resolv.conf): reachable on port 53 whatever the defaults say.
    package var resolvers: [String]
    /// Says whose table it is to whoever lists the host's ruleset (`msb sandbox web`).
    package var comment: String

    package init(tableName: String, uid: UInt32, policy: NetworkPolicy, resolvers: [String], comment: String = "msb sandbox") {
        self.tableName = tableName
        // Only characters that need no quoting rules: it goes between double quotes.
        self.comment = String(comment.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || " _.-".unicodeScalars.contains($0)) }.prefix(120))
        self.uid = uid
        self.policy = policy
        self.resolvers = resolvers
    }

    /// Closed by default (issue 12): "this" network, private (RFC 1918), CGNAT, loopback,
    /// link-local (cloud metadata at 169.254.169.254), IETF protocol assignments, benchmark
    /// testing, multicast, reserved and broadcast.
    package static let deniedIPv4 = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    ]
    /// Their IPv6 counterparts: unspecified, loopback, IPv4-mapped, unique local, link-local, multicast.
    package static let deniedIPv6 = ["::/128", "::1/128", "::ffff:0:0/96", "fc00::/7", "fe80::/10", "ff00::/8"]

    /// The table, as one `nft -f` document. It is created with the `owner` flag: it belongs
    /// to the netlink socket that made it (the supervisor's), nobody else can change it, and
    /// the kernel deletes it when that socket closes, so even a supervisor killed with
    /// SIGKILL leaves nothing in the host's ruleset.
    package var ruleset: String {
        var rules = [
            "meta skuid != \(uid) return",
            "ct state established,related accept",
        ]
        let own = policy.denied.map { ($0, "reject") } + policy.allowed.map { ($0, "accept") }
        // Most specific first; at equal size a deny wins (it is listed first and the sort is stable).
        for (rule, verdict) in own.enumerated().sorted(by: { a, b in
            a.element.0.prefixLength != b.element.0.prefixLength ? a.element.0.prefixLength > b.element.0.prefixLength : a.offset < b.offset
        }).map(\.element) {
            rules.append(Self.match(rule) + " " + verdict)
        }
        if policy.allowHost {
            rules += ["ip daddr 127.0.0.0/8 accept", "ip6 daddr ::1 accept"]
        }
        for resolver in resolvers {
            let family = resolver.contains(":") ? "ip6" : "ip"
            rules.append("\(family) daddr \(resolver) meta l4proto { tcp, udp } th dport 53 accept")
        }
        rules += [
            "fib daddr type local reject",
            "ip daddr { \(Self.deniedIPv4.joined(separator: ", ")) } reject",
            "ip6 daddr { \(Self.deniedIPv6.joined(separator: ", ")) } reject",
        ]
        return """
        table inet \(tableName) {
          comment "\(comment)"
          flags owner
          chain output {
            type filter hook output priority filter; policy accept;
        \(rules.map { "    " + $0 }.joined(separator: "\n"))
          }
        }

        """
    }

    private static func match(_ rule: EgressRule) -> String {
        let address = "\(rule.isIPv6 ? "ip6" : "ip") daddr \(rule.network)"
        guard let port = rule.port else { return address }
        return address + " meta l4proto { tcp, udp } th dport \(port)"
    }

    /// Nameservers listed in resolv.conf text (IP literals only; anything else is ignored).
    package static func resolvers(inResolvConf text: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            // A zone index (fe80::1%eth0) is not an address nftables takes.
            let address = String(words[1].split(separator: "%").first ?? "")
            return IPAddress.family(of: address) == nil ? nil : address
        }
    }
}
