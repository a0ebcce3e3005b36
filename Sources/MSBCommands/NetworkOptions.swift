import MSBClient
import MSBCore

/// The network options of create and run: a network by default, `--no-net` for none.
enum NetworkOptions {
    static let options: [OptionSpec] = [
        OptionSpec(long: "publish", short: "p", valueName: "SPEC",
                   help: "Publish guest ports on the host: [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp] (repeatable; HOSTIP: 127.0.0.1)",
                   repeatable: true,
                   details: "publish guest ports on the host: `[HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp]`, ranges of equal length (`8080-8081:80-81`), IPv6 in brackets (`[::1]:8080:80`); HOSTIP is `127.0.0.1` unless given (repeatable)"),
        OptionSpec(long: "no-net", short: nil, valueName: nil, help: "No network: the sandbox has only its loopback interface",
                   details: "no network: only `lo` (refused together with `-p`, `--allow-host` and the `--net-*` options)"),
        OptionSpec(long: "allow-host", short: nil, valueName: nil,
                   help: "Let the guest reach the host's loopback services as \(GuestAddressing.hostAlias)",
                   details: "the guest may reach the host's loopback services as `\(GuestAddressing.hostAlias)`"),
        OptionSpec(long: "net-allow", short: nil, valueName: "CIDR[:PORT]",
                   help: "Open a destination the default policy closes (private ranges, link-local, ...) (repeatable)", repeatable: true,
                   details: "open a destination the default policy closes, e.g. `10.20.0.0/16` or `10.30.1.5:5432` (repeatable)"),
        OptionSpec(long: "net-deny", short: nil, valueName: "CIDR[:PORT]",
                   help: "Close a destination the default policy opens (repeatable)", repeatable: true,
                   details: "close a destination the default policy opens (repeatable)"),
        OptionSpec(long: "net-unrestricted", short: nil, valueName: nil,
                   help: "No egress filter: the guest reaches whatever the host can, private networks included",
                   details: "no egress filter at all (refused with `--net-allow`/`--net-deny`, which would do nothing)"),
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
