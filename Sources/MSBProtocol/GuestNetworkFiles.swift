/// What the guest agent makes of a `GuestNetwork` besides the ioctls: the checks it runs
/// before touching the interface, and the text of /etc/resolv.conf and /etc/hosts. Here,
/// beside the message, so the host's tests pin down what the static agent writes.
extension GuestNetwork {
    /// Marks the /etc/hosts lines msb added: they are replaced at every setup (every
    /// restore of a saved guest), the image's own lines are kept.
    package static let hostsMarker = "# msb"
    package static let maximumHostsEntries = 64
    package static let maximumHostsEntryBytes = 255

    /// Why the guest cannot apply this configuration, or nil. The interface name is joined
    /// into /sys paths, so it is a plain name; byte counts are checked before any copy.
    package var problem: String? {
        let nameBytes = Array(interface.utf8)
        let nameCharacters = nameBytes.allSatisfy { byte in
            let lowercased = byte | 0x20
            return (0x30...0x39).contains(byte) || (0x61...0x7A).contains(lowercased) || byte == 0x2D || byte == 0x5F
        }
        // IFNAMSIZ is 16 with the terminating zero.
        guard !nameBytes.isEmpty, nameBytes.count < 16, nameCharacters else { return "bad interface name '\(interface)'" }
        guard macAddress.count == 6 else { return "a MAC address has 6 bytes, not \(macAddress.count)" }
        guard macAddress[0] & 1 == 0, macAddress.contains(where: { $0 != 0 }) else {
            return "\(Self.hexText(macAddress)) is not a unicast MAC address"
        }
        for (name, bytes) in [("address", address), ("gateway", gateway), ("nameserver", nameserver)] where bytes.count != 4 {
            return "an IPv4 \(name) has 4 bytes, not \(bytes.count)"
        }
        guard (1...32).contains(prefixLength) else { return "bad prefix length \(prefixLength)" }
        guard (68...65535).contains(mtu) else { return "bad MTU \(mtu)" }
        guard hostsEntries.count <= Self.maximumHostsEntries else { return "too many /etc/hosts entries (\(hostsEntries.count))" }
        for entry in hostsEntries {
            guard entry.utf8.count <= Self.maximumHostsEntryBytes,
                  !entry.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }) else {
                return "bad /etc/hosts entry"
            }
        }
        return nil
    }

    /// The netmask of `prefixLength` (clamped to 0...32), 4 bytes.
    package var netmask: [UInt8] {
        let bits = UInt32(min(prefixLength, 32))
        let mask: UInt32 = bits == 0 ? 0 : UInt32.max << (32 - bits)
        return [UInt8(truncatingIfNeeded: mask >> 24), UInt8(truncatingIfNeeded: mask >> 16),
                UInt8(truncatingIfNeeded: mask >> 8), UInt8(truncatingIfNeeded: mask)]
    }

    package static func dottedQuad(_ bytes: [UInt8]) -> String { bytes.map(String.init).joined(separator: ".") }

    static func hexText(_ bytes: [UInt8]) -> String {
        bytes.map { byte in (byte < 0x10 ? "0" : "") + String(byte, radix: 16) }.joined(separator: ":")
    }

    /// The whole of /etc/resolv.conf: the sandbox's one resolver (passt's DNS forwarder),
    /// nothing else (NetworkTests reads it back verbatim).
    package var resolvConf: String { "nameserver \(Self.dottedQuad(nameserver))\n" }

    /// `existing` /etc/hosts with the lines an earlier setup added replaced by this one's
    /// `hostsEntries`, and a `127.0.0.1 localhost` line when the image has none.
    package func hostsFile(merging existing: String) -> String {
        // Split on the scalar: "\r\n" is one Character, so splitting characters would miss it.
        var lines = existing.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
            .map { String(String.UnicodeScalarView($0)) }
        if lines.last == "" { lines.removeLast() }
        lines.removeAll(where: Self.isAddedByMSB)
        var added: [String] = []
        if !lines.contains(where: Self.mapsLocalhost) { added.append("127.0.0.1\tlocalhost") }
        added += hostsEntries
        return (lines + added.map { "\($0) \(Self.hostsMarker)" }).map { $0 + "\n" }.joined()
    }

    static func isAddedByMSB(_ line: String) -> Bool {
        var trimmed = Substring(line)
        while let last = trimmed.last, last == " " || last == "\t" || last == "\r" { trimmed.removeLast() }
        guard trimmed.hasSuffix(hostsMarker) else { return false }
        let before = trimmed.dropLast(hostsMarker.count)
        return before.isEmpty || before.last == " " || before.last == "\t"
    }

    static func mapsLocalhost(_ line: String) -> Bool {
        let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        return fields.first == "127.0.0.1" && fields.dropFirst().contains("localhost")
    }
}
