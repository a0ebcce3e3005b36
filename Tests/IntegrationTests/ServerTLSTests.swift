import Foundation
import Testing

/// `msb server start --tls-cert/--tls-key` with a CA and certificate made for the test
/// (openssl), the CLI verifying it with `--cacert` / MSB_CACERT, and API keys listed and
/// revoked on that server.
@Suite(.serialized) struct ServerTLSTests {
    static let fixture: (server: TestServer, key: String, ca: String) = {
        do {
            let dir = MSBHarness.home + "/tls"
            try makeCertificates(in: dir)
            let server = try TestServer(name: "srv-tls", options: ["--tls-cert", dir + "/server.pem", "--tls-key", dir + "/server.key",
                                                                   "--request-timeout", "3s"], sharedImages: false)
            return (server, try server.keygen(), dir + "/ca.pem")
        } catch { fatalError("cannot start the TLS test server: \(error)") }
    }()

    /// A CA, and a server certificate it signs for 127.0.0.1 and localhost.
    static func makeCertificates(in dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(dir)'
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 \
                -subj /CN=msb-test-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
                -subj /CN=127.0.0.1 2>/dev/null
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestServer.MSBError("openssl failed to make the test certificates") }
    }

    func env(_ extra: [String: String] = [:], key: String? = fixture.key) -> [String: String] {
        var env = ["MSB_SERVER_URL": Self.fixture.server.url, "MSB_HOME": MSBHarness.home + "/client-home"]
        if let key { env["MSB_API_KEY"] = key }
        return env.merging(extra) { $1 }
    }

    @Test func theCLIVerifiesTheServerWithItsCA() throws {
        let ca = Self.fixture.ca
        let ran = try MSBHarness.run(["--cacert", ca, "run", "--", "echo", "over tls"], env: env())
        #expect(ran.status == 0 && ran.out == "over tls\n", "\(ran.stderr)")
        let name = MSBHarness.uniqueName("tls")
        #expect(try MSBHarness.run(["create", "--name", name], env: env(["MSB_CACERT": ca])).status == 0)
        defer { _ = try? MSBHarness.run(["rm", "-f", name], env: env(["MSB_CACERT": ca])) }
        // The exec's stream (an upgraded connection) runs over TLS too, stdin included.
        let input = Data((0..<100_000).map { UInt8($0 % 251) })
        let echoed = try MSBHarness.run(["--cacert", ca, "exec", name, "--", "cat"], stdin: input, env: env())
        #expect(echoed.status == 0 && echoed.stdout == input, "\(echoed.stderr)")
        let listed = try MSBHarness.run(["--cacert", ca, "ls", "-q"], env: env())
        #expect(listed.out.split(separator: "\n").contains(Substring(name)))
        let status = try MSBHarness.run(["server", "status"], env: ["MSB_HOME": Self.fixture.server.home])
        #expect(status.status == 0 && status.out.hasPrefix("running at https://127.0.0.1:") && status.out.contains("healthy"))
    }

    @Test func anUntrustedCertificateOrPlainHTTPFailsClearly() throws {
        let url = Self.fixture.server.url
        let untrusted = "error: cannot reach msb server at \(url): TLS: the server's certificate is not trusted"
        let ls = try MSBHarness.run(["ls"], env: env())
        #expect(ls.status == 1 && ls.stderr.hasPrefix(untrusted), "\(ls.stderr)")
        #expect(ls.stderr.hasSuffix("  → give the CA that signed it with --cacert FILE (or MSB_CACERT)\n"))
        let exec = try MSBHarness.run(["exec", "anything", "--", "true"], env: env())
        #expect(exec.status == 1 && exec.stderr.hasPrefix(untrusted), "\(exec.stderr)")
        // A CA that did not sign it: refused the same way.
        let wrongCA = try MSBHarness.run(["--cacert", MSBHarness.home + "/tls/server.pem", "ls"], env: env())
        #expect(wrongCA.status == 1 && wrongCA.stderr.hasPrefix(untrusted), "\(wrongCA.stderr)")

        let plainURL = url.replacingOccurrences(of: "https://", with: "http://")
        let plain = try MSBHarness.run(["--server", plainURL, "ls"], env: env())
        #expect(plain.status == 2 && plain.stderr.hasPrefix("error: this msb server speaks HTTPS only\n  → use an https:// URL"), "\(plain.stderr)")
        let plainExec = try MSBHarness.run(["--server", plainURL, "exec", "x", "--", "true"], env: env())
        #expect(plainExec.status == 2 && plainExec.stderr.hasPrefix("error: this msb server speaks HTTPS only\n"), "\(plainExec.stderr)")
        let raw = RawHTTP.request(port: RawHTTP.port(of: url), "GET", "/api/v1/health")
        #expect(raw.status == 400 && raw.body.contains("this msb server speaks HTTPS only"))
    }

    /// A TLS handshake sent one byte at a time is cut at the request deadline (3 s here).
    @Test func aSlowHandshakeIsCutOffAtTheDeadline() throws {
        let fd = try #require(RawHTTP.connect(port: RawHTTP.port(of: Self.fixture.server.url), receiveTimeoutSeconds: 10))
        defer { close(fd) }
        let started = Date()
        var cutAfter: Double?
        // The start of a ClientHello record, then one byte every 250 ms, for at most 10 s.
        #expect(RawHTTP.send(fd, "\u{16}\u{03}\u{01}"))
        while Date().timeIntervalSince(started) < 10 {
            if RawHTTP.closedByPeer(fd) || !RawHTTP.send(fd, "\u{01}") {
                cutAfter = Date().timeIntervalSince(started)
                break
            }
            usleep(250_000)
        }
        print("abuse: TLS handshake trickled byte by byte cut off after \(cutAfter.map { String(format: "%.2f", $0) } ?? "never")s (deadline 3s)")
        let cut = try #require(cutAfter, "the slow handshake was never cut off")
        #expect(cut >= 2.5 && cut < 6)
    }

    @Test func plainHTTPOffLoopbackIsRefusedAtStart() throws {
        let home = MSBHarness.home + "/srv-refused"
        let refused = try MSBHarness.run(["server", "start", "--host", "0.0.0.0", "--port", "0"], env: ["MSB_HOME": home])
        #expect(refused.status == 2)
        #expect(refused.stderr == "error: refusing to serve plain HTTP on 0.0.0.0: API keys and sandbox I/O would cross the network unencrypted\n"
                + "  → give --tls-cert FILE --tls-key FILE, or --insecure-http if a TLS-terminating proxy stands in front\n")
        let half = try MSBHarness.run(["server", "start", "--tls-cert", "x.pem"], env: ["MSB_HOME": home])
        #expect(half.status == 2 && half.stderr.hasPrefix("error: --tls-cert and --tls-key go together\n"))
        let badCert = try MSBHarness.run(["server", "start", "--port", "0", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"],
                                         env: ["MSB_HOME": home])
        #expect(badCert.status == 2 && badCert.stderr.hasPrefix("error: cannot read the TLS certificate /nonexistent.pem"), "\(badCert.stderr)")
    }

    @Test func keysAreListedAndRevokedAndRevocationHoldsForStreamsToo() throws {
        let server = Self.fixture.server
        let issued = try MSBHarness.run(["server", "keygen", "--namespace", "team-t"], env: ["MSB_HOME": server.home])
        let key = issued.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let id = String(issued.stderr.split(separator: " ").dropFirst(3).first ?? "")
        #expect(issued.stderr.hasPrefix("msb: API key \(id) for namespace team-t, expires "), "\(issued.stderr)")
        let never = try MSBHarness.run(["server", "keygen", "--expire", "never"], env: ["MSB_HOME": server.home])
        #expect(never.stderr.contains("does not expire"))

        let listed = try MSBHarness.run(["server", "keys", "ls", "--format", "json"], env: ["MSB_HOME": server.home])
        let records = try JSONSerialization.jsonObject(with: listed.stdout) as? [[String: Any]] ?? []
        let mine = try #require(records.first { $0["id"] as? String == id })
        #expect(mine["namespace"] as? String == "team-t" && mine["revoked_at"] == nil)
        let expires = RemoteDate.parse(mine["expires_at"] as? String ?? "")
        #expect(abs((expires?.timeIntervalSinceNow ?? 0) - 90 * 86400) < 300)
        #expect(records.contains { $0["expires_at"] == nil })
        let table = try MSBHarness.run(["server", "keys", "ls"], env: ["MSB_HOME": server.home])
        #expect(table.out.hasPrefix("ID ") && table.out.contains("NAMESPACE") && table.out.contains(id))

        let ca = Self.fixture.ca
        let before = try MSBHarness.run(["--cacert", ca, "--namespace", "team-t", "ls"], env: env(key: key))
        #expect(before.status == 0, "\(before.stderr)")
        let revoked = try MSBHarness.run(["server", "keys", "revoke", id], env: ["MSB_HOME": server.home])
        #expect(revoked.status == 0 && revoked.out == "revoked API key \(id) (namespace team-t)\n")
        let after = try MSBHarness.run(["--cacert", ca, "--namespace", "team-t", "ls"], env: env(key: key))
        #expect(after.status == 1 && after.stderr.hasPrefix("error: API key \(id) was revoked at "), "\(after.stderr)")
        let stream = try MSBHarness.run(["--cacert", ca, "--namespace", "team-t", "exec", "x", "--", "true"], env: env(key: key))
        #expect(stream.status == 1 && stream.stderr.hasPrefix("error: API key \(id) was revoked at "), "\(stream.stderr)")
        let unknown = try MSBHarness.run(["server", "keys", "revoke", "nope"], env: ["MSB_HOME": server.home])
        #expect(unknown.status == 1 && unknown.stderr.hasPrefix("error: API key not found: nope\n"))
    }
}

enum RemoteDate {
    static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
