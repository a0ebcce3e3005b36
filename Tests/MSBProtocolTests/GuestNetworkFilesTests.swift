import Testing
@testable import MSBProtocol

/// What the guest agent checks and writes for `setup.network`: /etc/hosts keeps the
/// image's lines and is the same after any number of setups (one after every restore).
@Suite struct GuestNetworkFilesTests {
    static let network = GuestNetwork(interface: "eth0", macAddress: [0x02, 0x6d, 0x73, 0x62, 0, 1],
                                      address: [10, 0, 2, 15], prefixLength: 24, gateway: [10, 0, 2, 2],
                                      nameserver: [10, 0, 2, 3], mtu: 65520, hostsEntries: ["10.0.2.2 host.msb.internal"])

    static func changed(_ change: (inout GuestNetwork) -> Void) -> GuestNetwork {
        var network = Self.network
        change(&network)
        return network
    }

    @Test func resolvConfNamesTheOneNameserver() {
        #expect(Self.network.resolvConf == "nameserver 10.0.2.3\n")
    }

    @Test func theImagesHostsLinesStayAndOursFollow() {
        let image = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n# a comment\n\n192.0.2.7 db\n"
        #expect(Self.network.hostsFile(merging: image) == image + "10.0.2.2 host.msb.internal # msb\n")
    }

    @Test func aSecondSetupReplacesTheLinesOfTheFirst() {
        let image = "127.0.0.1 localhost\n"
        let first = Self.network.hostsFile(merging: image)
        #expect(Self.network.hostsFile(merging: first) == first)
        let other = Self.changed { $0.hostsEntries = ["10.0.2.9 other.msb.internal", "10.0.2.2 host.msb.internal"] }
        #expect(other.hostsFile(merging: first)
                == "127.0.0.1 localhost\n10.0.2.9 other.msb.internal # msb\n10.0.2.2 host.msb.internal # msb\n")
        let none = Self.changed { $0.hostsEntries = [] }
        #expect(none.hostsFile(merging: first) == image)
    }

    @Test(arguments: ["", "::1 localhost\n", "127.0.0.1 localhost.localdomain\n", "# 127.0.0.1 localhost\n",
                      "127.0.0.2 localhost"])
    func localhostIsAddedWhenTheImageLacksIt(_ image: String) {
        let merged = Self.network.hostsFile(merging: image)
        let imageLines = image.isEmpty ? "" : (image.hasSuffix("\n") ? image : image + "\n")
        #expect(merged == imageLines + "127.0.0.1\tlocalhost # msb\n10.0.2.2 host.msb.internal # msb\n")
        #expect(Self.network.hostsFile(merging: merged) == merged)
    }

    @Test(arguments: ["127.0.0.1 localhost", "127.0.0.1\tmybox localhost # loopback", "  127.0.0.1 localhost\r"])
    func anImageLocalhostLineCounts(_ line: String) {
        #expect(Self.network.hostsFile(merging: line + "\n") == line + "\n10.0.2.2 host.msb.internal # msb\n")
    }

    @Test func windowsLineEndingsAreLinesToo() {
        let image = "127.0.0.1 localhost\r\n10.0.2.2 old.msb.internal # msb\r\n"
        #expect(Self.network.hostsFile(merging: image) == "127.0.0.1 localhost\r\n10.0.2.2 host.msb.internal # msb\n")
    }

    @Test func onlyLinesEndingInTheMarkerAreOurs() {
        let image = "127.0.0.1 localhost\n10.1.1.1 a #msb\n10.1.1.2 b # msb-ish\n10.1.1.3 c # msb  \n"
        #expect(Self.network.hostsFile(merging: image)
                == "127.0.0.1 localhost\n10.1.1.1 a #msb\n10.1.1.2 b # msb-ish\n10.0.2.2 host.msb.internal # msb\n")
    }

    @Test func netmasksFromPrefixLengths() {
        #expect(Self.changed { $0.prefixLength = 24 }.netmask == [255, 255, 255, 0])
        #expect(Self.changed { $0.prefixLength = 1 }.netmask == [128, 0, 0, 0])
        #expect(Self.changed { $0.prefixLength = 20 }.netmask == [255, 255, 240, 0])
        #expect(Self.changed { $0.prefixLength = 32 }.netmask == [255, 255, 255, 255])
        #expect(Self.changed { $0.prefixLength = 200 }.netmask == [255, 255, 255, 255])
    }

    @Test func aGoodConfigurationHasNoProblem() {
        #expect(Self.network.problem == nil)
        #expect(Self.changed { $0.interface = "enp0s1_x-2" }.problem == nil)
    }

    /// The host is trusted less than it seems: every count is checked before the agent
    /// copies bytes into an ioctl, and the interface name is joined into /sys paths.
    @Test(arguments: [
        ("", "bad interface name ''"),
        ("../../etc", "bad interface name '../../etc'"),
        ("eth0/x", "bad interface name 'eth0/x'"),
        ("abcdefghijklmnop", "bad interface name 'abcdefghijklmnop'"),
        ("eth 0", "bad interface name 'eth 0'"),
    ])
    func badInterfaceNamesAreRefused(_ name: String, _ problem: String) {
        #expect(Self.changed { $0.interface = name }.problem == problem)
    }

    @Test func badByteCountsAndValuesAreRefused() {
        #expect(Self.changed { $0.macAddress = [2, 0, 0, 0, 0] }.problem == "a MAC address has 6 bytes, not 5")
        #expect(Self.changed { $0.macAddress = [0x03, 0, 0, 0, 0, 1] }.problem
                == "03:00:00:00:00:01 is not a unicast MAC address")
        #expect(Self.changed { $0.macAddress = [0, 0, 0, 0, 0, 0] }.problem
                == "00:00:00:00:00:00 is not a unicast MAC address")
        #expect(Self.changed { $0.address = [10, 0, 2] }.problem == "an IPv4 address has 4 bytes, not 3")
        #expect(Self.changed { $0.gateway = [] }.problem == "an IPv4 gateway has 4 bytes, not 0")
        #expect(Self.changed { $0.nameserver = Array(repeating: 1, count: 16) }.problem
                == "an IPv4 nameserver has 4 bytes, not 16")
        #expect(Self.changed { $0.prefixLength = 0 }.problem == "bad prefix length 0")
        #expect(Self.changed { $0.prefixLength = 33 }.problem == "bad prefix length 33")
        #expect(Self.changed { $0.mtu = 67 }.problem == "bad MTU 67")
        #expect(Self.changed { $0.mtu = 65536 }.problem == "bad MTU 65536")
    }

    @Test func hostsEntriesCannotAddLinesOrGrowWithoutBound() {
        #expect(Self.changed { $0.hostsEntries = ["10.0.2.2 a\n10.9.9.9 b"] }.problem == "bad /etc/hosts entry")
        #expect(Self.changed { $0.hostsEntries = ["10.0.2.2 a\r"] }.problem == "bad /etc/hosts entry")
        #expect(Self.changed { $0.hostsEntries = ["10.0.2.2 a\u{0}"] }.problem == "bad /etc/hosts entry")
        #expect(Self.changed { $0.hostsEntries = [String(repeating: "a", count: 256)] }.problem == "bad /etc/hosts entry")
        #expect(Self.changed { $0.hostsEntries = Array(repeating: "10.0.2.2 a", count: 65) }.problem
                == "too many /etc/hosts entries (65)")
    }
}
