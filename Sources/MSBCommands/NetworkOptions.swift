import MSBClient
import MSBCore

/// The network options of create and run: a network by default, `--no-net` for none.
enum NetworkOptions {
    static let options: [OptionSpec] = [
        OptionSpec(long: "publish", short: "p", valueName: "SPEC",
                   help: "Publish guest ports on the host: [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp] (repeatable; HOSTIP: 127.0.0.1)",
                   repeatable: true),
        OptionSpec(long: "no-net", short: nil, valueName: nil, help: "No network: the sandbox has only its loopback interface"),
        OptionSpec(long: "allow-host", short: nil, valueName: nil,
                   help: "Let the guest reach the host's loopback services as \(GuestAddressing.hostAlias)"),
        OptionSpec(long: "net-allow", short: nil, valueName: "CIDR[:PORT]",
                   help: "Open a destination the default policy closes (private ranges, link-local, ...) (repeatable)", repeatable: true),
        OptionSpec(long: "net-deny", short: nil, valueName: "CIDR[:PORT]",
                   help: "Close a destination the default policy opens (repeatable)", repeatable: true),
        OptionSpec(long: "net-unrestricted", short: nil, valueName: nil,
                   help: "No egress filter: the guest reaches whatever the host can, private networks included"),
    ]

    /// The options that shape a network, in the order help lists them (what `--no-net` contradicts).
    static let networkShaping: [(long: String, flag: Bool)] = [
        ("publish", false), ("allow-host", true), ("net-allow", false), ("net-deny", false), ("net-unrestricted", true),
    ]

    /// The sandbox's network: nil for `--no-net`, else the default policy adjusted by the
    /// options. Contradictions are usage errors, found before anything is touched.
    static func policy(from arguments: ParsedArguments) throws(MSBError) -> NetworkPolicy? {
        let given = networkShaping.filter { $0.flag ? arguments.flag($0.long) : !arguments.allValues($0.long).isEmpty }
            .map { $0.long == "publish" ? "-p/--publish" : "--" + $0.long }
        if arguments.flag("no-net") {
            guard given.isEmpty else {
                let list = given.count == 1 ? given[0] : given.dropLast().joined(separator: ", ") + " and " + (given.last ?? "")
                throw MSBError(.invalidArgument, "--no-net leaves the sandbox without a network; drop \(list) or drop --no-net")
            }
            return nil
        }
        var policy = NetworkPolicy()
        for text in arguments.allValues("publish") { policy.publishedPorts.append(try PublishedPort.parse(text)) }
        policy.allowHost = arguments.flag("allow-host")
        for text in arguments.allValues("net-allow") { policy.allowed.append(try EgressRule.parse(text)) }
        for text in arguments.allValues("net-deny") { policy.denied.append(try EgressRule.parse(text)) }
        policy.unrestricted = arguments.flag("net-unrestricted")
        try policy.check()
        return policy
    }
}
