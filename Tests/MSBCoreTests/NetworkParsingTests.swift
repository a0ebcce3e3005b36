import Testing
@testable import MSBCore

/// `-p` and `--net-allow`/`--net-deny` text, as users and remote clients type it.
@Suite struct NetworkParsingTests {
    @Test func publicationsParse() throws {
        #expect(try PublishedPort.parse("8080:80") == PublishedPort(hostPort: 8080, guestPort: 80))
        #expect(try PublishedPort.parse("127.0.0.1:5353:53/udp")
                == PublishedPort(hostAddress: "127.0.0.1", hostPort: 5353, guestPort: 53, transport: .udp))
        #expect(try PublishedPort.parse("0.0.0.0:8080-8081:80-81/TCP")
                == PublishedPort(hostAddress: "0.0.0.0", hostPort: 8080, guestPort: 80, count: 2))
        #expect(try PublishedPort.parse("[::1]:8080:80") == PublishedPort(hostAddress: "::1", hostPort: 8080, guestPort: 80))
        #expect(try PublishedPort.parse("65535:1").hostPorts == 65_535...65_535)
    }

    @Test(arguments: ["", "80", "8080:80/sctp", "8080:80/", "0:80", "65536:80", "8080:0", "8080-8079:80-79", "8080-8081:80",
                      "1.2.3:80:80", "host:80:80", "[::1:8080:80", "[1.2.3.4]:80:80", "::1:80:80", "+80:80", "8080:80:90",
                      "[::1]8080:80", "080080:80", "8080 :80", "8080:80-"])
    func badPublicationsAreRefused(_ text: String) {
        let error = #expect(throws: MSBError.self) { try PublishedPort.parse(text) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == "invalid port publication '\(text)'")
        #expect(error?.hint == "use [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp], for example 8080:80 or 127.0.0.1:5353:53/udp")
    }

    @Test func publicationsPrintLikeDockerPortAndRoundTrip() throws {
        let range = try PublishedPort.parse("0.0.0.0:8080-8081:80-81")
        #expect(range.description == "80-81/tcp -> 0.0.0.0:8080-8081")
        let v6 = try PublishedPort.parse("[::1]:53:53/udp")
        #expect(v6.description == "53/udp -> [::1]:53")
        for port in [range, v6, try PublishedPort.parse("8080:80")] {
            #expect(try PublishedPort.parse(port.specification) == port, "\(port.specification)")
        }
        #expect(try PublishedPort.parse("8080:80").specification == "127.0.0.1:8080:80/tcp")
    }

    @Test func overlappingPublicationsAreRefused() throws {
        let policy = NetworkPolicy(publishedPorts: [try .parse("8080:80"), try .parse("0.0.0.0:8079-8081:90-92")])
        let error = #expect(throws: MSBError.self) { try policy.check() }
        #expect(error?.message == "published ports overlap: 127.0.0.1:8080:80/tcp and 0.0.0.0:8079-8081:90-92/tcp both bind host port 8080/tcp")
        let distinct = NetworkPolicy(publishedPorts: [try .parse("8080:80"), try .parse("8080:80/udp"), try .parse("127.0.0.2:8080:80")])
        try distinct.check()
    }

    @Test func egressRulesParseAndCanonicalise() throws {
        #expect(try EgressRule.parse("10.20.1.1/16") == EgressRule(network: "10.20.0.0/16"))
        #expect(try EgressRule.parse("10.30.1.5:5432") == EgressRule(network: "10.30.1.5/32", port: 5432))
        #expect(try EgressRule.parse("[fd00::1/8]:443") == EgressRule(network: "fd00::/8", port: 443))
        #expect(try EgressRule.parse("fd12:3456::7/64") == EgressRule(network: "fd12:3456::/64"))
        #expect(try EgressRule.parse("::1") == EgressRule(network: "::1/128"))
        #expect(try EgressRule.parse("0.0.0.0/0") == EgressRule(network: "0.0.0.0/0"))
        #expect(try EgressRule.parse("172.16.5.4/12:80").description == "172.16.0.0/12:80")
        #expect(try EgressRule.parse("[fd00::/8]:443").description == "[fd00::/8]:443")
        #expect(try EgressRule.parse("[fd00::/8]").description == "fd00::/8")
    }

    @Test(arguments: ["", "10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "10.0.0.0:0", "10.0.0.0:65536", "[fd00::/8]:", "[fd00::/8",
                      "example.com", "10.0.0.0/8/8", "10.0.0.0/-1", "fd00::/129", "[fd00::/8]:443x", "10.0.0.0/0008"])
    func badEgressRulesAreRefused(_ text: String) {
        let error = #expect(throws: MSBError.self) { try EgressRule.parse(text) }
        #expect(error?.message == "invalid network rule '\(text)'")
        #expect(error?.hint == "use CIDR[:PORT], for example 10.20.0.0/16, 10.30.1.5:5432 or [fd00::/8]:443")
    }

    @Test func rulesLieInsideWiderOnes() throws {
        let tenEight = try EgressRule.parse("10.0.0.0/8")
        #expect(try EgressRule.parse("10.20.0.0/16").lies(inside: tenEight))
        #expect(try EgressRule.parse("10.1.2.3:5432").lies(inside: tenEight))
        #expect(tenEight.lies(inside: tenEight))
        #expect(try !tenEight.lies(inside: EgressRule.parse("10.20.0.0/16")))
        #expect(try !EgressRule.parse("11.0.0.0/16").lies(inside: tenEight))
        #expect(try !EgressRule.parse("192.168.1.0/24").lies(inside: EgressRule.parse("192.168.0.0/24")))
        #expect(try EgressRule.parse("192.168.0.128/25").lies(inside: EgressRule.parse("192.168.0.0/24")))
        #expect(try EgressRule.parse("fd00:1::/32").lies(inside: EgressRule.parse("fd00::/8")))
        #expect(try !EgressRule.parse("fe80::/16").lies(inside: EgressRule.parse("fd00::/8")))
        #expect(try !EgressRule.parse("::a00:0/104").lies(inside: tenEight))
        #expect(try EgressRule.parse("8.8.8.8").lies(inside: EgressRule.parse("0.0.0.0/0")))
        // A rule on one port covers only that port.
        let postgres = try EgressRule.parse("10.0.0.0/8:5432")
        #expect(try EgressRule.parse("10.1.1.1:5432").lies(inside: postgres))
        #expect(try !EgressRule.parse("10.1.1.1").lies(inside: postgres))
        #expect(try !EgressRule.parse("10.1.1.1:22").lies(inside: postgres))
    }

    @Test func unrestrictedRefusesRulesThatWouldDoNothing() {
        let policy = NetworkPolicy(allowed: [EgressRule(network: "10.0.0.0/8")], denied: [EgressRule(network: "1.1.1.1/32")], unrestricted: true)
        let error = #expect(throws: MSBError.self) { try policy.check() }
        #expect(error?.message == "--net-unrestricted turns the egress filter off, so --net-allow and --net-deny would do nothing; drop one or the other")
    }
}
