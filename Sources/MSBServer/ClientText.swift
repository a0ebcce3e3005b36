import Foundation
import MSBCore

/// Text that crosses the server's edges: what a remote client may read (no host paths) and
/// what the access log may hold (one line per event, whatever a client sent).
package struct HostPathRedactor: Sendable {
    /// Host directories and what a client reads instead, longest first.
    private let roots: [(path: String, shown: String)]

    package init(paths: MSBPaths) {
        var roots: [(String, String)] = [(paths.namespacesDirectory, "<namespaces>"), (paths.serverDirectory, "<server>"),
                                         (paths.images, "<images>"), (paths.templates, "<templates>"), (paths.artifacts, "<guest>"), (paths.home, "<msb-home>")]
        // Also as the kernel spells them when a root is reached through a symlink.
        roots += roots.compactMap { root in
            let resolved = (root.0 as NSString).resolvingSymlinksInPath
            return resolved == root.0 ? nil : (resolved, root.1)
        }
        self.roots = roots.filter { $0.0.count > 1 }.sorted { $0.0.count > $1.0.count }.map { (path: $0.0, shown: $0.1) }
    }

    /// `text` with every host directory of the server replaced by its placeholder.
    package func callAsFunction(_ text: String) -> String {
        var text = text
        for root in roots where text.contains(root.path) {
            text = text.replacingOccurrences(of: root.path, with: root.shown)
        }
        return text
    }

    /// The error as a remote client may see it: host directories replaced in the message,
    /// the hint and the cause (whose text comes from the OS or Foundation and may name any
    /// host file, so every absolute path left in it goes too).
    package func error(_ error: MSBError) -> MSBError {
        let cause = error.cause.map { SendableErrorDescription(Self.withoutAbsolutePaths(self("\($0)"))) }
        return MSBError(error.code, self(error.message), hint: error.hint.map { self($0) }, cause: cause)
    }

    /// Replaces every `/word/...` run with `<path>`.
    static func withoutAbsolutePaths(_ text: String) -> String {
        var out = ""
        var inPath = false
        var previous: Character = " "
        for character in text {
            if inPath {
                if character.isWhitespace || "'\"“”,;:()".contains(character) {
                    inPath = false
                    out.append(character)
                }
            } else if character == "/" && (previous.isWhitespace || "'\"“(=:".contains(previous)) {
                inPath = true
                out += "<path>"
            } else {
                out.append(character)
            }
            previous = character
        }
        return out
    }
}

/// Access-log fields: one event per line, so nothing a client sent may break a line or pass
/// for another field.
package enum LogText {
    /// A bare value when it is a plain word (`team-a`), else a JSON-style quoted string with
    /// control characters escaped; long values are cut.
    package static func field(_ value: String, limit: Int = 200) -> String {
        let plain = !value.isEmpty && value.count <= limit && value.unicodeScalars.allSatisfy(wordScalars.contains)
        return plain ? value : quoted(value, limit: limit)
    }

    private static let wordScalars = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.*".unicodeScalars)

    /// `"text"` with `"`, `\`, control characters (C0, DEL, C1) and Unicode line and
    /// paragraph separators escaped.
    package static func quoted(_ value: String, limit: Int = 500) -> String {
        var out = "\""
        var count = 0
        for scalar in value.unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            count += 1
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let v = scalar.value
                if v < 0x20 || (0x7f...0x9f).contains(v) || v == 0x2028 || v == 0x2029 {
                    out += String(format: "\\u%04x", v)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
