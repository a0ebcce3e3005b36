import Foundation
import MSBCore
@testable import MSBServer
import Testing

@Suite struct APIKeyTests {
    let authority = APIKeyAuthority(secret: Data(repeating: 7, count: 32))

    @Test func issuedKeysVerifyWithTheirNamespaceAndExpiry() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let key = authority.issue(namespace: "team-a", expiresIn: 3600, now: now)
        let claims = try authority.verify(key, now: now.addingTimeInterval(10))
        #expect(claims.namespace == "team-a")
        #expect(claims.expiresAt == now.addingTimeInterval(3600))
        #expect(claims.allows("team-a") && !claims.allows("team-b"))
        let admin = try authority.verify(authority.issue(namespace: "*", expiresIn: nil))
        #expect(admin.expiresAt == nil && admin.allows("anything"))
    }

    @Test func expiredKeysAreRefused() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let key = authority.issue(namespace: "team-a", expiresIn: 60, now: now)
        #expect(throws: MSBError.self) { try authority.verify(key, now: now.addingTimeInterval(61)) }
        do {
            _ = try authority.verify(key, now: now.addingTimeInterval(61))
        } catch {
            #expect(error.message == "API key expired at 2027-01-15T08:01:00Z")
            #expect(error.code == .accessDenied)
        }
    }

    @Test(arguments: ["", "abc", "a.b.c", "a.b"])
    func garbageIsRefused(_ token: String) {
        #expect(throws: MSBError.self) { try authority.verify(token) }
    }

    @Test func tamperedOrForeignKeysAreRefused() throws {
        let key = authority.issue(namespace: "team-a", expiresIn: nil)
        let parts = key.split(separator: ".").map(String.init)
        // The same signature over a payload that claims every namespace.
        let forged = parts[0] + "." + APIKeyAuthority.base64URL(Data(#"{"iat":1,"iss":"msb","ns":"*"}"#.utf8)) + "." + parts[2]
        #expect(throws: MSBError.self) { try authority.verify(forged) }
        // alg none: the classic JWT downgrade.
        let none = APIKeyAuthority.base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + parts[1] + "."
        #expect(throws: MSBError.self) { try authority.verify(none) }
        // Signed by another server.
        let other = APIKeyAuthority(secret: Data(repeating: 8, count: 32)).issue(namespace: "team-a", expiresIn: nil)
        #expect(throws: MSBError.self) { try authority.verify(other) }
    }

    @Test func theSecretIsCreatedOnceWithOwnerOnlyPermissions() throws {
        let dir = NSTemporaryDirectory() + "msb-keys-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try APIKeyAuthority.load(serverDirectory: dir)
        let second = try APIKeyAuthority.load(serverDirectory: dir)
        let key = first.issue(namespace: "x", expiresIn: nil)
        #expect(try second.verify(key).namespace == "x")
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/secret")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((attributes[.size] as? Int) == 32)
    }
}
