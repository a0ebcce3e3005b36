import MSBCore
import Testing

/// Names derived with `StableHash` are stored (template directories, nftables tables) or
/// must match across runs (the VMM's uid): the values are pinned to FNV-1a's reference ones.
@Suite struct StableHashTests {
    @Test func matchesTheReferenceValues() {
        #expect(StableHash.fnv1a64([]) == 0xCBF2_9CE4_8422_2325)
        #expect(StableHash.fnv1a64("a".utf8) == 0xAF63_DC4C_8601_EC8C)
        #expect(StableHash.fnv1a64("foobar".utf8) == 0x8594_4171_F739_67E8)
        #expect(StableHash.fnv1a32("a".utf8) == 0xE40C_292C)
        #expect(StableHash.fnv1a32("foobar".utf8) == 0xBF9C_F968)
    }

    @Test func hexIsSixteenDigits() {
        #expect(StableHash.hex16(0) == "0000000000000000")
        #expect(StableHash.hex16(0xAB) == "00000000000000ab")
        #expect(StableHash.hex16(UInt64.max) == "ffffffffffffffff")
    }
}
