import MSBCore
import MSBOS
/// `[registry/]repository[:tag|@digest]`, with Docker Hub's defaults
/// (`alpine` is `docker.io/library/alpine:latest`).
struct ImageReference: Equatable, CustomStringConvertible {
    var registry: String
    var repository: String
    /// A tag or a `sha256:` digest.
    var reference: String

    var isDigest: Bool { reference.hasPrefix("sha256:") }

    /// Where the registry API lives (Docker Hub's API host differs from its name).
    var apiHost: String { registry == "docker.io" ? "registry-1.docker.io" : registry }

    var description: String { "\(registry)/\(repository)\(isDigest ? "@" : ":")\(reference)" }

    static func parse(_ text: String) throws(MSBError) -> ImageReference {
        let bad = MSBError(.invalidArgument, "invalid image reference '\(text)'",
                           hint: "use [registry/]repository[:tag|@sha256:digest], e.g. docker.io/library/alpine:3.20")
        guard !text.isEmpty, !text.contains(" ") else { throw bad }
        var rest = Substring(text)
        var reference = "latest"
        if let at = rest.firstIndex(of: "@") {
            reference = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
            guard reference.hasPrefix("sha256:"), reference.count == 71,
                  reference.dropFirst(7).allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { throw bad }
        } else if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            reference = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
            guard !reference.isEmpty else { throw bad }
        }
        var parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else { throw bad }
        var registry = "docker.io"
        if parts.count > 1, parts[0].contains(".") || parts[0].contains(":") || parts[0] == "localhost" {
            registry = parts.removeFirst()
        }
        if registry == "docker.io" && parts.count == 1 { parts.insert("library", at: 0) }
        let repository = parts.joined(separator: "/")
        guard repository.allSatisfy({ $0.isLowercase || $0.isNumber || "._-/".contains($0) }) else { throw bad }
        return ImageReference(registry: registry, repository: repository, reference: reference)
    }
}
