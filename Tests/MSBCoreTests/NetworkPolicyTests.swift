import Glibc
import MSBCore
import MSBNetwork
import Testing

/// The host side of a sandbox's network without a VM: what users type (-p, CIDR[:PORT]),
/// the nftables document the filter loads, passt's command line and the port checks.
@Suite struct NetworkPolicyTests {
    @Test func publicationsParse() throws {
        #expect(try PublishedPort.parse("8080:80") == PublishedPort(hostPort: 8080, guestPort: 80))
        #expect(try PublishedPort.parse("127.0.0.1:5353:53/udp") == PublishedPort(hostPort: 5353, guestPort: 53, transport: .udp))
        #expect(try PublishedPort.parse("0.0.0.0:9000-9002:7000-7002/tcp")
            == PublishedPort(hostAddress: "0.0.0.0", hostPort: 9000, guestPort: 7000, count: 3))
        #expect(try PublishedPort.parse("[::1]:8080:80") == PublishedPort(hostAddress: "::1", hostPort: 8080, guestPort: 80))
        #expect(try PublishedPort.parse("8080:80").description == "80/tcp -> 127.0.0.1:8080")
        #expect(try PublishedPort.parse("[::1]:8080-8081:80-81/udp").description == "80-81/udp -> [::1]:8080-8081")
        for bad in ["80", "0:80", "8080:0", "65536:80", "8080:80/sctp", "8080-8081:80", "8081-8080:80-79", "host:8080:80",
                    "1.2.3:8080:80", "[::1]8080:80", "::1:8080:80", "", ":", "8080:80:", "+80:80", "08080a:80"] {
            #expect(throws: MSBError.self, "\(bad)") { try PublishedPort.parse(bad) }
        }
        do {
            _ = try PublishedPort.parse("8080")
        } catch {
            #expect(error.description.contains("invalid port publication '8080'"))
        }
    }

    @Test func overlappingPublicationsAreFound() throws {
        let web = try PublishedPort.parse("8080-8090:80-90")
        #expect(web.overlaps(try PublishedPort.parse("8085:1")))
        #expect(!web.overlaps(try PublishedPort.parse("8085:1/udp")))
        #expect(!web.overlaps(try PublishedPort.parse("8091:1")))
        #expect(web.overlaps(try PublishedPort.parse("0.0.0.0:8080:1")))
        #expect(!web.overlaps(try PublishedPort.parse("127.0.0.2:8080:1")))
    }

    @Test func egressRulesParseAndAreCanonical() throws {
        #expect(try EgressRule.parse("10.20.1.1/16") == EgressRule(network: "10.20.0.0/16"))
        #expect(try EgressRule.parse("10.30.1.5:5432") == EgressRule(network: "10.30.1.5/32", port: 5432))
        #expect(try EgressRule.parse("10.0.0.0/8:443").description == "10.0.0.0/8:443")
        #expect(try EgressRule.parse("[fd00::1/8]:443") == EgressRule(network: "fd00::/8", port: 443))
        #expect(try EgressRule.parse("fd00::/8") == EgressRule(network: "fd00::/8"))
        #expect(try EgressRule.parse("192.168.1.129/25").network == "192.168.1.128/25")
        for bad in ["10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "10.0.0.0:0", "10.0.0.0:65536", "example.com", "[fd00::/8", "fd00::/129",
                    "10.0.0.0/8/8", "", "10.0.0.0/-1", "[10.0.0.1]:x"] {
            #expect(throws: MSBError.self, "\(bad)") { try EgressRule.parse(bad) }
        }
    }

    @Test func theFilterClosesTheHostAndPrivateRangesAndOpensOnlyWhatWasAsked() throws {
        var policy = NetworkPolicy()
        policy.allowed = [try EgressRule.parse("10.20.0.0/16"), try EgressRule.parse("10.30.1.5:5432")]
        policy.denied = [try EgressRule.parse("10.20.5.0/24")]
        let document = EgressFilter(tableName: "msb_test", uid: 4242, policy: policy, resolvers: ["10.255.255.53"]).ruleset
        let lines = document.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.contains("flags owner"))
        #expect(lines.contains("meta skuid != 4242 return"))
        // Most specific first, whatever the order they were given in.
        let allowPort = try #require(lines.firstIndex(of: "ip daddr 10.30.1.5/32 meta l4proto { tcp, udp } th dport 5432 accept"))
        let deny = try #require(lines.firstIndex(of: "ip daddr 10.20.5.0/24 reject"))
        let allow = try #require(lines.firstIndex(of: "ip daddr 10.20.0.0/16 accept"))
        let resolver = try #require(lines.firstIndex(of: "ip daddr 10.255.255.53 meta l4proto { tcp, udp } th dport 53 accept"))
        let local = try #require(lines.firstIndex(of: "fib daddr type local reject"))
        let privateRanges = try #require(lines.firstIndex { $0.hasPrefix("ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16") })
        #expect(allowPort < deny && deny < allow && allow < resolver && resolver < local && local < privateRanges)
        #expect(!lines.contains("ip daddr 127.0.0.0/8 accept"))
        policy.allowHost = true
        let withHost = EgressFilter(tableName: "msb_test", uid: 4242, policy: policy, resolvers: []).ruleset
        #expect(withHost.contains("ip daddr 127.0.0.0/8 accept"))
    }

    @Test func resolversComeFromResolvConf() {
        let text = "# comment\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\nnameserver not-an-address\nsearch example\nnameserver 1.1.1.1 \n"
        #expect(EgressFilter.resolvers(inResolvConf: text) == ["10.255.255.53", "fe80::1", "1.1.1.1"])
    }

    @Test func passtGetsTheFixedAddressingAndExactlyThePublishedPorts() throws {
        var policy = NetworkPolicy()
        #expect(Array(SandboxNetwork.passtArguments(policy, descriptor: 3).suffix(4)) == ["--tcp-ports", "none", "--udp-ports", "none"])
        policy.publishedPorts = [try PublishedPort.parse("8080:80"), try PublishedPort.parse("0.0.0.0:9000-9001:7000-7001"),
                                 try PublishedPort.parse("5353:53/udp")]
        let args = SandboxNetwork.passtArguments(policy, descriptor: 3)
        #expect(args.starts(with: ["/usr/bin/passt", "--foreground", "--quiet", "--fd", "3"]))
        #expect(args.contains("--dns-forward") && args.contains("10.0.2.3"))
        #expect(Array(args.suffix(4)) == ["--tcp-ports", "127.0.0.1/8080:80,0.0.0.0/9000-9001:7000-7001", "--udp-ports", "127.0.0.1/5353:53"])
    }

    @Test func aSandboxHasItsOwnStableMACAndTable() {
        let mac = SandboxNetwork.macAddress(forSandboxDirectory: "/var/lib/msb/sandboxes/web")
        #expect(mac.count == 6 && mac[0] == 0x02)
        #expect(mac == SandboxNetwork.macAddress(forSandboxDirectory: "/var/lib/msb/sandboxes/web"))
        #expect(mac != SandboxNetwork.macAddress(forSandboxDirectory: "/var/lib/msb/sandboxes/web2"))
        #expect(SandboxNetwork.macText([2, 0, 0xAB, 1, 2, 3]) == "02:00:ab:01:02:03")
        let table = SandboxNetwork.tableName(forSandboxDirectory: "/var/lib/msb/sandboxes/web")
        #expect(table.hasPrefix("msb_") && table.count == 20)
    }

    @Test func aTakenPortIsAClearErrorBeforeAnythingStarts() throws {
        // Hold a loopback port, then ask for it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(bound == 0 && listen(fd, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)
        do {
            try HostPorts.checkAvailable([PublishedPort(hostPort: port, guestPort: 80)], unprivilegedFrom: 1024)
            Issue.record("a taken port was accepted")
        } catch {
            #expect(error.description == "cannot publish 127.0.0.1:\(port)/tcp: the port is already in use")
        }
        // UDP on the same number is another port.
        try HostPorts.checkAvailable([PublishedPort(hostPort: port, guestPort: 80, transport: .udp)], unprivilegedFrom: 1024)
        #expect(throws: MSBError.self) { try HostPorts.checkAvailable([PublishedPort(hostPort: 80, guestPort: 80)], unprivilegedFrom: 1024) }
    }
}

extension NetworkPolicyTests {
    /// Found by the network-spec fuzz target: C's parser stops at a NUL byte, so the text
    /// after it rode along into passt's command line unchecked.
    @Test func anAddressWithANulByteIsRefused() {
        #expect(throws: MSBError.self) { try PublishedPort.parse("126.2.0.1\u{0}junk:8080:80") }
        #expect(throws: MSBError.self) { try EgressRule.parse("10.0.0.1\u{0}/8") }
        #expect(IPAddress.bytes(of: "10.0.0.1\u{0}") == nil)
        #expect(IPAddress.bytes(of: "10.0.0.1") == [10, 0, 0, 1])
    }
}
