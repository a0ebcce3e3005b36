import Foundation

/// A content digest as registries name manifests and blobs: `sha256:` and 64 lowercase hex
/// digits, checked before it is used for anything. A manifest is the registry's (the
/// attacker's) text, so this is the only form that is ever joined into a host path.
package struct ContentDigest: Hashable, Sendable, CustomStringConvertible {
    /// The 64 hex digits: the file name of a blob or a stored image.
    package let hex: String

    package var description: String { "sha256:" + hex }

    package init?(_ text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = text.dropFirst(7)
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        self.hex = String(hex)
    }

    /// From a hash function's output (which is 64 lowercase hex digits by construction).
    package init(sha256Bytes bytes: some Sequence<UInt8>) {
        hex = bytes.map { byte in byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16) }.joined()
    }
}
