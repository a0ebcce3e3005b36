import Crypto
import Foundation
import MSBClient
import MSBCore

/// What a verified API key says about its holder.
package struct APIKeyClaims: Sendable, Equatable {
    /// The one namespace the key may touch, or `*` for all of them.
    package var namespace: String
    package var issuedAt: Date
    package var expiresAt: Date?
    /// The key's id (`jti`), by which it is listed and revoked.
    package var id: String? = nil

    package func allows(_ namespace: String) -> Bool { self.namespace == "*" || self.namespace == namespace }

    /// The namespace of a request that names none: the key's own when it has exactly one
    /// (the older Rust SDK sends no `namespace` in `command.run` and `metrics.get`), else
    /// `default`, as for a key for all namespaces or a development server.
    package var defaultNamespace: String { namespace == "*" ? RemoteWire.defaultNamespace : namespace }
}

/// Issues and verifies API keys: JWTs (HS256) signed with a per-server secret that is
/// created on first use (`$MSB_HOME/server/secret`, 0600). Verification accepts HS256 and
/// nothing else, so a token cannot pick its own algorithm (no `none`, no key confusion).
package struct APIKeyAuthority: Sendable {
    /// Kept as bytes (SymmetricKey is not Sendable) and wrapped per use.
    private let secretBytes: Data
    private var secret: SymmetricKey { SymmetricKey(data: secretBytes) }
    private static let header = base64URL(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    package init(secret: Data) { self.secretBytes = secret }

    /// The server's secret, created with owner-only permissions if there is none yet.
    package static func load(serverDirectory: String) throws(MSBError) -> APIKeyAuthority {
        let path = serverDirectory + "/secret"
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count >= 32 else { throw MSBError(.stateStore, "the server secret \(path) is damaged", hint: "remove it and issue new keys") }
            return APIKeyAuthority(secret: data)
        }
        do {
            try FileManager.default.createDirectory(atPath: serverDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let key = SymmetricKey(size: .bits256)
            let bytes = key.withUnsafeBytes { Data($0) }
            // Written beside the final name and renamed: a crash never leaves half a secret.
            let temporary = path + ".tmp-\(getpid())"
            guard FileManager.default.createFile(atPath: temporary, contents: bytes, attributes: [.posixPermissions: 0o600]) else {
                throw MSBError(.stateStore, "cannot write \(temporary)")
            }
            if link(temporary, path) != 0 {
                unlink(temporary)
                // Another process made it first: use theirs.
                if errno == EEXIST { return try load(serverDirectory: serverDirectory) }
                throw MSBError(.stateStore, "cannot create the server secret \(path): \(String(cString: strerror(errno)))")
            }
            unlink(temporary)
            return APIKeyAuthority(secret: bytes)
        } catch {
            throw MSBError.wrap(error, .stateStore, "cannot create the server secret in \(serverDirectory)")
        }
    }

    /// A new key id: 16 random hex digits.
    package static func newKeyID() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    package func issue(namespace: String, expiresIn seconds: TimeInterval?, now: Date = Date(), id: String = newKeyID()) -> String {
        var claims: [String: Any] = ["iss": "msb", "ns": namespace, "iat": Self.wholeSeconds(now.timeIntervalSince1970), "jti": id]
        // Rounded up: a key is valid for at least as long as asked (truncating made a 1 s key
        // expire at once when issued late in a second).
        if let seconds { claims["exp"] = Self.wholeSeconds((now.timeIntervalSince1970 + seconds).rounded(.up)) }
        let payload = Self.base64URL((try? JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])) ?? Data())
        let signingInput = Self.header + "." + payload
        return signingInput + "." + Self.base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: secret)))
    }

    package func verify(_ token: String, now: Date = Date()) throws(MSBError) -> APIKeyClaims {
        let invalid = MSBError(.accessDenied, "invalid API key", hint: "issue one with 'msb server keygen' on the server")
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, String(parts[0]) == Self.header,
              let signature = Self.data(base64URL: String(parts[2])),
              HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Data((parts[0] + "." + parts[1]).utf8), using: secret),
              let payload = Self.data(base64URL: String(parts[1])),
              let claims = try? JSONSerialization.jsonObject(with: payload) as? [String: Any],
              let namespace = claims["ns"] as? String, let issued = claims["iat"] as? Int else { throw invalid }
        let expires = (claims["exp"] as? Int).map { Date(timeIntervalSince1970: TimeInterval($0)) }
        if let expires, expires <= now {
            throw MSBError(.accessDenied, "API key expired at \(RemoteWire.iso8601(expires))", hint: "issue a new one with 'msb server keygen'")
        }
        return APIKeyClaims(namespace: namespace, issuedAt: Date(timeIntervalSince1970: TimeInterval(issued)), expiresAt: expires,
                            id: claims["jti"] as? String)
    }

    /// Seconds since the epoch as a claim, saturating instead of trapping on an absurd expiry.
    static func wholeSeconds(_ seconds: TimeInterval) -> Int {
        Int(exactly: min(max(seconds, 0), 1e15).rounded(.down)) ?? 0
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
