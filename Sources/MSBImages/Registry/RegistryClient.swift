import Foundation
import FoundationNetworking
import MSBCore
import MSBOS
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The OCI distribution / Docker registry v2 API over URLSession: anonymous access,
/// bearer tokens from the `WWW-Authenticate` challenge, and basic credentials
/// (`MSB_REGISTRY_AUTH=user:password`, also used to obtain tokens).
final class RegistryClient: @unchecked Sendable {
    let image: ImageReference
    private let scheme: String
    private let credentials: String?
    private var authorization: String?
    private let session: URLSession
    private let lock = NSLock()

    init(image: ImageReference, insecure: Bool, credentials: String?) {
        self.image = image
        self.scheme = insecure ? "http" : "https"
        self.credentials = credentials
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        configuration.timeoutIntervalForResource = 3600
        session = URLSession(configuration: configuration)
    }

    private var base: String { "\(scheme)://\(image.apiHost)/v2/\(image.repository)" }

    /// GET returning the body; follows auth challenges once.
    func get(_ path: String, accept: [String] = []) throws(MSBError) -> (Data, HTTPURLResponse) {
        var retried = false
        while true {
            var request = URLRequest(url: URL(string: base + path)!)
            for type in accept { request.addValue(type, forHTTPHeaderField: "Accept") }
            if let authorization = currentAuthorization() { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
            let (data, response) = try send(request)
            if response.statusCode == 401 && !retried {
                try authenticate(challenge: response.value(forHTTPHeaderField: "WWW-Authenticate"))
                retried = true
                continue
            }
            guard (200..<300).contains(response.statusCode) else {
                let body = String(decoding: data.prefix(300), as: UTF8.self)
                let what = response.statusCode == 404 ? "not found" : "HTTP \(response.statusCode)"
                throw MSBError(response.statusCode == 404 ? .notFound : .internalError,
                               "registry \(image.registry) answered \(what) for \(image.repository)\(path.hasPrefix("/manifests") ? "" : " " + path): \(body)")
            }
            return (data, response)
        }
    }

    private func currentAuthorization() -> String? {
        lock.lock()
        defer { lock.unlock() }
        return authorization
    }

    private func send(_ request: URLRequest) throws(MSBError) -> (Data, HTTPURLResponse) {
        let box = ResponseBox()
        let task = session.dataTask(with: request) { data, response, error in
            box.set(data, response, error)
        }
        task.resume()
        box.wait()
        if let error = box.error {
            throw MSBError(.internalError, "cannot reach registry \(request.url?.host ?? image.registry): \(error.localizedDescription)")
        }
        guard let response = box.response as? HTTPURLResponse else {
            throw MSBError(.internalError, "registry \(image.registry) sent no HTTP response")
        }
        return (box.data ?? Data(), response)
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
        guard let realm = fields["realm"], var components = URLComponents(string: realm) else {
            throw MSBError(.internalError, "registry \(image.registry) sent an unusable challenge: \(challenge)")
        }
        var query = components.queryItems ?? []
        if let service = fields["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: fields["scope"] ?? "repository:\(image.repository):pull"))
        components.queryItems = query
        var request = URLRequest(url: components.url!)
        if let basic { request.setValue(basic, forHTTPHeaderField: "Authorization") }
        let (data, response) = try send(request)
        guard response.statusCode == 200,
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let token = (json["token"] as? String) ?? (json["access_token"] as? String) else {
            throw MSBError(.accessDenied, "registry \(image.registry) refused a token (HTTP \(response.statusCode))",
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

final class ResponseBox: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private(set) var data: Data?
    private(set) var response: URLResponse?
    private(set) var error: Error?

    func set(_ data: Data?, _ response: URLResponse?, _ error: Error?) {
        self.data = data
        self.response = response
        self.error = error
        done.signal()
    }

    func wait() { done.wait() }
}
