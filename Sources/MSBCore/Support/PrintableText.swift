/// Text that came from a guest, a registry, an archive or a remote client, made safe to
/// print on a terminal: control characters (C0, DEL, C1) and bidi overrides are shown
/// escaped (`\x1b`, `\u{202e}`), so none of them can move the cursor, retitle the window
/// or reorder the rest of the line.
package enum PrintableText {
    /// `text` escaped; with `maxScalars`, cut there and marked with `…`.
    package static func escaped(_ text: String, maxScalars: Int? = nil) -> String {
        let scalars = text.unicodeScalars
        let cut = maxScalars.map { scalars.count > $0 } ?? false
        guard cut || scalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in scalars.prefix(maxScalars ?? Int.max) {
            if isControl(scalar) {
                let value = scalar.value
                out += value < 0x100 ? "\\x" + (value < 0x10 ? "0" : "") + String(value, radix: 16)
                    : "\\u{" + String(value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return cut ? out + "…" : out
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || (0x202a...0x202e).contains(scalar.value)
            || (0x2066...0x2069).contains(scalar.value)
    }
}
