import Foundation
import MSBCore
import MSBHTTP
import MSBOS
import NIOCore
import NIOHTTP1

/// The OCI distribution / Docker registry v2 API over msb's HTTP stack: anonymous access,
/// bearer tokens from the `WWW-Authenticate` challenge, and basic credentials
/// (`MSB_REGISTRY_AUTH=user:password`, also used to obtain tokens).
///
/// The registry is not trusted: its answers are size-limited, its error bodies are never
/// echoed (only an error code the spec defines), and credentials go only where the user
/// pointed them: the registry itself, or a token realm over https (plain http only on the
/// registry's own host when the user asked for an insecure registry).
final class RegistryClient: @unchecked Sendable {
    static let requestTimeoutSeconds = 3600.0

    let image: ImageReference
    private let insecure: Bool
    private let credentials: String?
    private var authorization: String?
    private let lock = NSLock()

    init(image: ImageReference, insecure: Bool, credentials: String?) {
        self.image = image
        self.insecure = insecure
        self.credentials = credentials
    }

    private var base: String { "\(insecure ? "http" : "https")://\(image.apiHost)/v2/\(image.repository)" }

    /// GET of a small document (a manifest), whole, at most `maxBytes`.
    func get(_ path: String, accept: [String] = [], maxBytes: Int) throws(MSBError) -> HTTPTransport.Response {
        try withAuthentication(path) { (headers) throws(MSBError) -> (Int, String?, [UInt8], HTTPTransport.Response) in
            let response = try send(base + path, headers: accept.map { ("Accept", $0) } + headers, maxBytes: maxBytes)
            return (response.status, response.header("WWW-Authenticate"), response.body, response)
        }
    }

    /// Streams a blob to `sink` (hashing and writing it), at most `maxBytes`.
    func download(_ path: String, maxBytes: Int, sink: @escaping @Sendable (ByteBuffer) throws -> Void) throws(MSBError) {
        try withAuthentication(path) { (headers) throws(MSBError) -> (Int, String?, [UInt8], Void) in
            let response: HTTPTransport.StreamedResponse
            do throws(HTTPTransport.Failure) {
                response = try HTTPTransport.download(base + path, headers: [("User-Agent", "msb")] + headers,
                                                      timeoutSeconds: Self.requestTimeoutSeconds, maxBodyBytes: maxBytes, sink: sink)
            } catch {
                throw MSBError(.internalError, "cannot fetch from registry \(image.registry): \(error.reason)")
            }
            return (response.status, response.header("WWW-Authenticate"), response.errorBody, ())
        }
    }

    /// Runs a request, answering one 401 challenge; a status other than 2xx is an error.
    private func withAuthentication<T>(_ path: String, _ attempt: ([(String, String)]) throws(MSBError) -> (Int, String?, [UInt8], T)) throws(MSBError) -> T {
        var retried = false
        while true {
            let headers = currentAuthorization().map { [("Authorization", $0)] } ?? []
            let (status, challenge, body, result) = try attempt(headers)
            if status == 401 && !retried {
                try authenticate(challenge: challenge)
                retried = true
                continue
            }
            guard (200..<300).contains(status) else {
                let what = status == 404 ? "not found" : "HTTP \(status)"
                let code = Self.errorCode(body).map { " (\($0))" } ?? ""
                throw MSBError(status == 404 ? .notFound : status == 401 || status == 403 ? .accessDenied : .internalError,
                               "registry \(image.registry) answered \(what) for \(image.repository)\(path.hasPrefix("/manifests") ? "" : " " + path)\(code)")
            }
            return result
        }
    }

    /// The first error code of an OCI error body (`{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`),
    /// when it is a plain upper-case word: the registry's own text is not shown.
    static func errorCode(_ body: [UInt8]) -> String? {
        guard let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let errors = json["errors"] as? [[String: Any]], let code = errors.first?["code"] as? String,
              !code.isEmpty, code.count <= 64, code.allSatisfy({ $0.isASCII && ($0.isUppercase || $0 == "_") }) else { return nil }
        return code
    }

    private func currentAuthorization() -> String? {
        lock.lock()
        defer { lock.unlock() }
        return authorization
    }

    private func send(_ url: String, headers: [(String, String)], maxBytes: Int) throws(MSBError) -> HTTPTransport.Response {
        do {
            return try HTTPTransport.send(.GET, url, headers: [("User-Agent", "msb")] + headers,
                                          timeoutSeconds: Self.requestTimeoutSeconds, maxBodyBytes: maxBytes)
        } catch {
            throw MSBError(.internalError, "cannot reach registry \(URLComponents(string: url)?.host ?? image.registry): \(error.reason)")
        }
    }

    private func authenticate(challenge: String?) throws(MSBError) {
        guard let challenge else { throw MSBError(.accessDenied, "registry \(image.registry) refused access (401)") }
        let basic = credentials.map { "Basic " + Data($0.utf8).base64EncodedString() }
        if challenge.lowercased().hasPrefix("basic") {
            guard let basic else {
                throw MSBError(.accessDenied, "registry \(image.registry) needs credentials", hint: "set MSB_REGISTRY_AUTH=user:password")
            }
            lock.lock(); authorization = basic; lock.unlock()
            return
        }
        let fields = Self.challengeFields(challenge)
        guard let realm = fields["realm"], var components = URLComponents(string: realm),
              let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http", let realmHost = components.host else {
            throw MSBError(.internalError, "registry \(image.registry) sent an unusable authentication challenge")
        }
        // Credentials follow the user's choice of registry: to a realm over https, or over plain
        // http only on the registry's own host when the user allowed an insecure registry.
        let realmIsTrusted = scheme == "https" || (insecure && Self.sameHost(realmHost, image.registryHost))
        if basic != nil && !realmIsTrusted {
            throw MSBError(.accessDenied, "registry \(image.registry) asks for credentials to be sent over plain http to \(realmHost); refused",
                           hint: "msb sends MSB_REGISTRY_AUTH only to https token services or the registry's own host")
        }
        var query = components.queryItems ?? []
        if let service = fields["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: fields["scope"] ?? "repository:\(image.repository):pull"))
        components.queryItems = query
        guard let url = components.url?.absoluteString else {
            throw MSBError(.internalError, "registry \(image.registry) sent an unusable authentication challenge")
        }
        let response = try send(url, headers: basic.map { [("Authorization", $0)] } ?? [], maxBytes: 1 << 20)
        guard response.status == 200,
              let json = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              let token = (json["token"] as? String) ?? (json["access_token"] as? String),
              token.utf8.count <= 16 << 10, token.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw MSBError(.accessDenied, "registry \(image.registry) refused a token (HTTP \(response.status))",
                           hint: "check MSB_REGISTRY_AUTH")
        }
        lock.lock(); authorization = "Bearer " + token; lock.unlock()
    }

    static func sameHost(_ a: String, _ b: String) -> Bool {
        func bare(_ host: String) -> String { host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased() }
        return bare(a) == bare(b)
    }

    /// `Bearer realm="x",service="y"` → ["realm": "x", "service": "y"].
    static func challengeFields(_ challenge: String) -> [String: String] {
        var fields: [String: String] = [:]
        let body = challenge.drop { $0 != " " }
        var key = "", value = "", inKey = true, inQuotes = false
        for character in body {
            if inKey {
                if character == "=" { inKey = false } else if character != " " && character != "," { key.append(character) }
            } else if character == "\"" {
                inQuotes.toggle()
            } else if character == "," && !inQuotes {
                fields[key.lowercased()] = value
                key = ""; value = ""; inKey = true
            } else {
                value.append(character)
            }
        }
        if !key.isEmpty { fields[key.lowercased()] = value }
        return fields
    }
}
