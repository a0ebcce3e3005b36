import Foundation
import MSBCore
import MSBHTTP
import MSBOS
import MSBProtocol

/// Where a remote msb server is and how to authenticate to it: `--server` / `MSB_SERVER_URL`,
/// `MSB_API_KEY` and `--namespace` / `MSB_NAMESPACE`.
package struct RemoteEndpoint: Sendable, Equatable {
    /// As the user wrote it, for error messages.
    package let url: String
    package let host: String
    package let port: UInt16
    /// https: TLS, verified against the system's CA store.
    package let tls: Bool
    package let apiKey: String?
    package let namespace: String
    /// `--cacert` / MSB_CACERT: the CA certificates to verify the server against instead of
    /// the system's.
    package let caCertificateFile: String?

    package var trust: HTTPTransport.TLSTrust { caCertificateFile.map { .caFile($0) } ?? .system }

    package init(url text: String, apiKey: String?, namespace: String, caCertificateFile: String? = nil) throws(MSBError) {
        let bad = { (why: String) in
            MSBError(.invalidArgument, "invalid server URL '\(text)': \(why)", hint: "use a URL such as \(RemoteWire.defaultURL)")
        }
        var rest = Substring(text)
        let tls = rest.hasPrefix("https://")
        guard tls || rest.hasPrefix("http://") else { throw bad("it must start with http:// or https://") }
        rest = rest.dropFirst(tls ? 8 : 7)
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...].allSatisfy({ $0 == "/" }) else { throw bad("a path is not supported") }
            rest = rest[..<slash]
        }
        var host = String(rest)
        var port: UInt16 = tls ? 443 : 80
        if rest.hasPrefix("[") {  // [::1]:5555
            guard let close = rest.firstIndex(of: "]") else { throw bad("unclosed IPv6 address") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = UInt16(after.dropFirst(), radix: 10), p > 0 else { throw bad("bad port") }
                port = p
            } else if !after.isEmpty { throw bad("unexpected text after the address") }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let p = UInt16(rest[rest.index(after: colon)...], radix: 10), p > 0 else { throw bad("bad port") }
            port = p
        }
        guard !host.isEmpty, !host.contains("@") else { throw bad("no host") }
        try InputParsing.validateNamespace(namespace)
        // Requests are made from `origin`, so trailing '/'s are only dropped from what
        // error messages show.
        var shown = Substring(text)
        while shown.hasSuffix("/") { shown = shown.dropLast() }
        self.url = String(shown)
        self.host = host
        self.port = port
        self.tls = tls
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        self.namespace = namespace
        self.caCertificateFile = caCertificateFile.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `scheme://host:port`, with IPv6 addresses bracketed, for building request URLs.
    package var origin: String {
        "\(tls ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// Headers every request to the server carries.
    package var headers: [(String, String)] {
        var headers = [("User-Agent", "msb"), ("Accept", "application/json")]
        if let apiKey { headers.append(("Authorization", "Bearer \(apiKey)")) }
        return headers
    }

    /// The endpoint the environment names, or nil for local mode.
    package static func fromEnvironment(_ environment: [String: String], server: String?, namespace: String?,
                                        caCertificateFile: String? = nil) throws(MSBError) -> RemoteEndpoint? {
        let url = server ?? environment["MSB_SERVER_URL"].flatMap { $0.isEmpty ? nil : $0 }
        let namespace = namespace ?? environment["MSB_NAMESPACE"].flatMap { $0.isEmpty ? nil : $0 }
        guard let url else {
            if let namespace, namespace != RemoteWire.defaultNamespace {
                throw MSBError(.invalidArgument, "namespaces exist on an msb server only",
                               hint: "add --server URL (or set MSB_SERVER_URL) to use namespace \(namespace)")
            }
            return nil
        }
        return try RemoteEndpoint(url: url, apiKey: environment["MSB_API_KEY"], namespace: namespace ?? RemoteWire.defaultNamespace,
                                  caCertificateFile: caCertificateFile ?? environment["MSB_CACERT"])
    }
}
