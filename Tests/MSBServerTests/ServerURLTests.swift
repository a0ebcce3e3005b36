import Foundation
import Glibc
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// An `MSB_SERVER_URL` that ends in '/': the SDKs join it and `/api/v1/rpc` as text and ask
/// for `//api/v1/rpc`; msb's own client builds its requests from the origin. Both reach the
/// server, a real one on 127.0.0.1 with sandboxes in memory.
@Suite struct ServerURLTests {
    let home = NSTemporaryDirectory() + "msburl-\(UUID().uuidString.prefix(8))"
    let sandboxes = FakeSandboxes(["default": ["web"]])

    /// A development server on a free loopback port; shut down by the caller.
    func server() throws -> (HTTPServer, port: Int) {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configuration.port = 0
        configuration.dev = true
        let server = HTTPServer(dispatcher: RPCDispatcher(configuration: configuration, host: sandboxes.host(home: home), authority: nil))
        return (server, try server.start())
    }

    /// The status line and body of one request sent exactly as written, on its own connection.
    func raw(port: Int, _ method: String, _ target: String, body: String = "") -> (status: String, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return ("no connection", "") }
        let request = Array(("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body).utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        let text = String(decoding: received, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (parts.first?.components(separatedBy: "\r\n").first ?? "", parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test func routedPathsIgnoreRepeatedAndTrailingSlashes() {
        #expect(HTTPHandler.routePath("/api/v1/rpc") == "/api/v1/rpc")
        #expect(HTTPHandler.routePath("//api/v1/rpc") == "/api/v1/rpc")
        #expect(HTTPHandler.routePath("/api/v1/rpc/") == "/api/v1/rpc")
        #expect(HTTPHandler.routePath("///api//v1///health/?x=/y") == "/api/v1/health")
        #expect(HTTPHandler.routePath("/api/v1/attach?namespace=a&sandbox=b") == "/api/v1/attach")
        #expect(HTTPHandler.routePath("") == "/" && HTTPHandler.routePath("?") == "/")
        #expect(HTTPHandler.routePath("/api/v1/rpcx") == "/api/v1/rpcx")
        #expect(HTTPHandler.routePath("/api/v1/../v1/rpc") == "/api/v1/../v1/rpc")
    }

    @Test func aServerURLEndingInSlashWorks() throws {
        defer { try? FileManager.default.removeItem(atPath: home) }
        let (server, port) = try server()
        defer { server.shutdown(graceSeconds: 1) }
        let command = #"{"jsonrpc":"2.0","method":"sandbox.command.run","params":{"sandbox":"web","namespace":"default","command":"echo","args":["hi"]},"id":"u1"}"#
        // What an SDK sends with MSB_SERVER_URL=http://127.0.0.1:PORT/ (and a client that adds a '/').
        for target in ["//api/v1/rpc", "/api/v1/rpc/", "/api/v1/rpc"] {
            let answer = raw(port: port, "POST", target, body: command)
            #expect(answer.status == "HTTP/1.1 200 OK", "\(target): \(answer.status) \(answer.body)")
            #expect(answer.body.contains(#""text":"hi""#), "\(target): \(answer.body)")
        }
        #expect(raw(port: port, "GET", "//api/v1/health").status == "HTTP/1.1 200 OK")
        #expect(raw(port: port, "GET", "//api/v1/rpc").status == "HTTP/1.1 405 Method Not Allowed")
        #expect(raw(port: port, "POST", "/api/v1/rpcx", body: command).status == "HTTP/1.1 404 Not Found")

        // msb's own client: the URL as the user wrote it, trailing '/'s and all.
        for url in ["http://127.0.0.1:\(port)/", "http://127.0.0.1:\(port)//"] {
            let endpoint = try RemoteEndpoint(url: url, apiKey: nil, namespace: "default")
            #expect(endpoint.url == "http://127.0.0.1:\(port)" && endpoint.origin == "http://127.0.0.1:\(port)")
            #expect(try RemoteBackend(endpoint: endpoint).metrics("web").name == "web")
        }
        #expect(throws: MSBError.self) { try RemoteEndpoint(url: "http://127.0.0.1:\(port)/api/v1/rpc", apiKey: nil, namespace: "default") }
    }
}
