import Foundation
import MSBCore
import MSBHTTP
import MSBOS
import NIOHTTP1

/// The OCI distribution / Docker registry v2 API over msb's HTTP stack: anonymous access,
/// bearer tokens from the `WWW-Authenticate` challenge, and basic credentials
/// (`MSB_REGISTRY_AUTH=user:password`, also used to obtain tokens).
final class RegistryClient: @unchecked Sendable {
    /// A manifest, config or layer larger than this is refused: blobs are held in memory, in
    /// one NIO buffer (at most 4 GiB).
    static let maxBlobBytes = Int(UInt32.max)
    static let requestTimeoutSeconds = 3600.0

    let image: ImageReference
    private let scheme: String
    private let credentials: String?
    private var authorization: String?
    private let lock = NSLock()

    init(image: ImageReference, insecure: Bool, credentials: String?) {
        self.image = image
        self.scheme = insecure ? "http" : "https"
        self.credentials = credentials
    }

    private var base: String { "\(scheme)://\(image.apiHost)/v2/\(image.repository)" }

    /// GET returning the response; follows auth challenges once.
    func get(_ path: String, accept: [String] = []) throws(MSBError) -> HTTPTransport.Response {
        var retried = false
        while true {
            var headers = accept.map { ("Accept", $0) }
            if let authorization = currentAuthorization() { headers.append(("Authorization", authorization)) }
            let response = try send(base + path, headers: headers)
            if response.status == 401 && !retried {
                try authenticate(challenge: response.header("WWW-Authenticate"))
                retried = true
                continue
            }
            guard (200..<300).contains(response.status) else {
                let body = String(decoding: response.body.prefix(300), as: UTF8.self)
                let what = response.status == 404 ? "not found" : "HTTP \(response.status)"
                throw MSBError(response.status == 404 ? .notFound : .internalError,
                               "registry \(image.registry) answered \(what) for \(image.repository)\(path.hasPrefix("/manifests") ? "" : " " + path): \(body)")
            }
            return response
        }
    }

    private func currentAuthorization() -> String? {
        lock.lock()
        defer { lock.unlock() }
        return authorization
    }

    private func send(_ url: String, headers: [(String, String)]) throws(MSBError) -> HTTPTransport.Response {
        do {
            return try HTTPTransport.send(.GET, url, headers: [("User-Agent", "msb")] + headers,
                                          timeoutSeconds: Self.requestTimeoutSeconds, maxBodyBytes: Self.maxBlobBytes)
        } catch {
            let host = URLComponents(string: url)?.host ?? image.registry
            throw MSBError(.internalError, "cannot reach registry \(host): \(error.reason)")
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
        guard let realm = fields["realm"], var components = URLComponents(string: realm), let base = components.url else {
            throw MSBError(.internalError, "registry \(image.registry) sent an unusable challenge: \(challenge)")
        }
        var query = components.queryItems ?? []
        if let service = fields["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: fields["scope"] ?? "repository:\(image.repository):pull"))
        components.queryItems = query
        let response = try send(components.url?.absoluteString ?? base.absoluteString, headers: basic.map { [("Authorization", $0)] } ?? [])
        guard response.status == 200,
              let json = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              let token = (json["token"] as? String) ?? (json["access_token"] as? String) else {
            throw MSBError(.accessDenied, "registry \(image.registry) refused a token (HTTP \(response.status))",
                           hint: "check MSB_REGISTRY_AUTH")
        }
        lock.lock(); authorization = "Bearer " + token; lock.unlock()
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
