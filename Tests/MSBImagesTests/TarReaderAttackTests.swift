import Foundation
import Testing
@testable import MSBImages
import MSBCore

/// Hole 2 (issue 10): the hand-written tar reader trapped on these two streams, which any
/// registry can serve as a layer. Now applied through libarchive, each ends in an error
/// (or, for the broken pax record, a clean read), never a crash.
@Suite struct TarReaderAttackTests {
    static func header(_ name: String, type: UInt8, sizeField: [UInt8]) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        for (i, b) in name.utf8.enumerated() { block[i] = b }
        for (i, b) in "0000644".utf8.enumerated() { block[100 + i] = b }
        for (i, b) in sizeField.enumerated() { block[124 + i] = b }
        block[156] = type
        for (i, b) in "ustar".utf8.enumerated() { block[257 + i] = b }
        for i in 148..<156 { block[i] = 32 }
        let sum = block.reduce(0) { $0 + Int($1) }
        let octal = String(sum, radix: 8)
        for (i, b) in (String(repeating: "0", count: max(0, 6 - octal.count)) + octal).utf8.enumerated() { block[148 + i] = b }
        block[154] = 0
        return block
    }

    static func apply(_ bytes: [UInt8]) throws(MSBError) {
        let top = NSTemporaryDirectory() + "/msb-tar-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: top + "/rootfs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: top) }
        FileManager.default.createFile(atPath: top + "/layer", contents: Data(bytes + [UInt8](repeating: 0, count: 1024)))
        var applier = LayerApplier(root: top + "/rootfs")
        try applier.apply(layer: top + "/layer", mediaType: "application/vnd.oci.image.layer.v1.tar")
    }

    @Test func paxRecordTwoSpaceNewline() {
        let pax = Array("2 \n".utf8)
        let bytes = Self.header("PaxHeaders/x", type: UInt8(ascii: "x"), sizeField: Array("00000000003".utf8))
            + pax + [UInt8](repeating: 0, count: 512 - pax.count)
        _ = Result { () throws(MSBError) in try Self.apply(bytes) }  // an error or nothing: not a trap
    }

    @Test func baseTwoFiftySixSize() {
        let bytes = Self.header("big", type: UInt8(ascii: "0"), sizeField: [0x80] + [UInt8](repeating: 0xff, count: 11))
        #expect(throws: MSBError.self) { try Self.apply(bytes) }
    }
}
