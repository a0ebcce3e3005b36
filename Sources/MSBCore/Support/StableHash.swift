/// FNV-1a: one stable, non-cryptographic hash for the names msb derives from paths and
/// inputs (nftables table names, MAC addresses, template directories, the VMM's uids).
/// Stable across releases and machines because those names are stored or compared; never a
/// security boundary (what a name stands for is always checked in full where it matters).
package enum StableHash {
    package static func fnv1a64<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    package static func fnv1a32<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var hash: UInt32 = 2_166_136_261
        for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }

    /// `value` as 16 lower-case hex digits, zero-padded.
    package static func hex16(_ value: UInt64) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
