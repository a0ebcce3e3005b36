import MSBCore
import MSBOS

/// `[registry/]repository[:tag|@digest]`, with Docker Hub's defaults
/// (`alpine` is `docker.io/library/alpine:latest`). Parsed by the distribution spec's
/// grammar: a reference reaches URLs, file names and messages, so nothing else is accepted.
package struct ImageReference: Equatable, CustomStringConvertible {
    package var registry: String
    package var repository: String
    /// A tag or a `sha256:` digest.
    package var reference: String

    package var isDigest: Bool { reference.hasPrefix("sha256:") }

    /// Where the registry API lives (Docker Hub's API host differs from its name).
    package var apiHost: String { registry == "docker.io" ? "registry-1.docker.io" : registry }

    /// The registry's host without its port (an IPv6 literal keeps its brackets).
    package var registryHost: String {
        if registry.hasPrefix("["), let close = registry.firstIndex(of: "]") { return String(registry[...close]) }
        return String(registry.split(separator: ":").first ?? "")
    }

    package var description: String { "\(registry)/\(repository)\(isDigest ? "@" : ":")\(reference)" }

    package static func parse(_ text: String) throws(MSBError) -> ImageReference {
        let bad = MSBError(.invalidArgument, "invalid image reference '\(text.count <= 300 ? text : String(text.prefix(300)) + "…")'",
                           hint: "use [registry/]repository[:tag|@sha256:digest], e.g. docker.io/library/alpine:3.20")
        guard !text.isEmpty, text.utf8.count <= 512, text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 32 && $0.value < 127 }) else {
            throw bad
        }
        var rest = Substring(text)
        var reference = "latest"
        if let at = rest.firstIndex(of: "@") {
            reference = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
            guard ContentDigest(reference) != nil else { throw bad }
        } else if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            reference = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
            guard isTag(reference) else { throw bad }
        }
        var parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var registry = "docker.io"
        if parts.count > 1, parts[0].contains(".") || parts[0].contains(":") || parts[0].hasPrefix("[") || parts[0] == "localhost" {
            registry = parts.removeFirst()
            guard isRegistry(registry) else { throw bad }
        }
        if registry == "docker.io" && parts.count == 1 { parts.insert("library", at: 0) }
        guard !parts.isEmpty, parts.allSatisfy(isPathComponent) else { throw bad }
        let repository = parts.joined(separator: "/")
        guard repository.utf8.count <= 255 else { throw bad }
        let parsed = ImageReference(registry: registry, repository: repository, reference: reference)
        // The canonical spelling (with ":latest" added) must itself be a reference this accepts.
        guard parsed.description.utf8.count <= 512 else { throw bad }
        return parsed
    }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
    private static func isTag(_ text: String) -> Bool {
        guard let first = text.utf8.first, text.utf8.count <= 128, isWordByte(first) else { return false }
        return text.utf8.allSatisfy { isWordByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    private static func isPathComponent(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last, isLowerAlphanumeric(first), isLowerAlphanumeric(last) else { return false }
        var index = 0
        while index < bytes.count {
            if isLowerAlphanumeric(bytes[index]) { index += 1; continue }
            // A separator run: ".", "_", "__" or one or more "-", then an alphanumeric.
            let start = index
            while index < bytes.count, !isLowerAlphanumeric(bytes[index]) { index += 1 }
            let separator = bytes[start..<index]
            let dashes = separator.allSatisfy { $0 == UInt8(ascii: "-") }
            guard dashes || separator.elementsEqual([UInt8(ascii: ".")]) || separator.elementsEqual([UInt8(ascii: "_")])
                    || separator.elementsEqual([UInt8(ascii: "_"), UInt8(ascii: "_")]) else { return false }
        }
        return true
    }

    /// A host name or IPv4 address, or a bracketed IPv6 literal, with an optional port.
    private static func isRegistry(_ text: String) -> Bool {
        var host = Substring(text)
        var port: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let literal = host[host.index(after: host.startIndex)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
            let after = host[host.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return false }
                port = after.dropFirst()
            }
            return port.map(isPort) ?? true
        } else if let colon = host.firstIndex(of: ":") {
            port = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        if let port, !isPort(port) { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    private static func isPort(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              let number = Int(text, radix: 10) else { return false }
        return (1...65535).contains(number)
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (97...122).contains(byte) || (48...57).contains(byte)
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (65...90).contains(byte) || byte == UInt8(ascii: "_")
    }
}
