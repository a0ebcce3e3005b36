import MSBCore
import MSBNetwork
import MSBServer

extension FuzzTargets {
    /// What remote clients and users send for a sandbox's network: `-p` / `ports` strings,
    /// `--net-allow`/`--net-deny` rules, the server's `--allow-port`. The first byte picks
    /// the parser. Whatever parses must be in range, survive its own text, and render
    /// into the nftables document as exactly one rule line: nothing a client sends may
    /// add a line, a quote or a brace to the host's ruleset.
    static func fuzzNetworkSpecs(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
        switch selector % 3 {
        case 0:
            guard let port = try? PublishedPort.parse(text) else { return }
            guard port.count >= 1, port.hostPorts.upperBound <= 65_535, port.guestPorts.upperBound <= 65_535,
                  port.hostPort >= 1, port.guestPort >= 1, IPAddress.bytes(of: port.hostAddress) != nil else {
                violated("'\(text)' parsed as \(port)")
            }
            let again = port.specification
            guard (try? PublishedPort.parse(again)) == port else { violated("'\(text)' parsed as \(port), '\(again)' does not give it back") }
            let argument = SandboxNetwork.passtArguments(NetworkPolicy(publishedPorts: [port]), descriptor: 3)
            guard !argument.contains(where: { $0.contains(" ") || $0.contains("\n") }) else { violated("'\(text)' put a space into passt's arguments") }
        case 1:
            guard let rule = try? EgressRule.parse(text) else { return }
            guard (try? EgressRule.parse(rule.description)) == rule else { violated("rule '\(text)' parsed as \(rule), which does not parse back") }
            let plain = EgressFilter(tableName: "msb_fuzz", uid: 1, policy: NetworkPolicy(), resolvers: []).ruleset
            let ruleset = EgressFilter(tableName: "msb_fuzz", uid: 1, policy: NetworkPolicy(allowed: [rule]), resolvers: []).ruleset
            let added = ruleset.split(separator: "\n").count - plain.split(separator: "\n").count
            guard added == 1, !ruleset.contains("\""  + "\"\""), ruleset.filter({ $0 == "{" }).count == plain.filter({ $0 == "{" }).count + (rule.port == nil ? 0 : 1) else {
                violated("rule '\(text)' changed the ruleset's shape")
            }
        default:
            _ = try? PortAllowance.parse(text)
        }
    }
}
