import CMSBSys
import Foundation
import MSBCore
import MSBOS
import MSBProtocol

/// A small blocking HTTP/1.1 client for talking to `msb server`: one connection per call,
/// `Content-Length` bodies, and the `msb-attach` upgrade that turns the connection into a
/// framed stream. Blocking fits the CLI, whose every command is one synchronous exchange.
package struct HTTPClient: Sendable {
    package struct Response: Sendable {
        package var status: Int
        /// Header names lower-cased.
        package var headers: [String: String]
        package var body: [UInt8]
    }

    package let endpoint: RemoteEndpoint
    package var connectTimeoutSeconds = 10.0
    /// Largest response accepted (a `sandbox.list` of thousands of sandboxes is well under it).
    package static let maxResponseBytes = 256 << 20

    package init(endpoint: RemoteEndpoint) { self.endpoint = endpoint }

    package func request(method: String, path: String, body: [UInt8]? = nil, contentType: String = "application/json") throws(MSBError) -> Response {
        let fd = try connect()
        defer { close(fd) }
        var headers = ["Connection: close", "Accept: application/json"]
        if let body { headers += ["Content-Type: \(contentType)", "Content-Length: \(body.count)"] }
        try send(fd, head(method, path, headers) + (body ?? []))
        var buffer: [UInt8] = []
        var response = try readHead(fd, into: &buffer)
        if let length = response.headers["content-length"].flatMap(Int.init) {
            guard length <= Self.maxResponseBytes else { throw failure("the response is too large (\(length) bytes)") }
            while buffer.count < length {
                guard let chunk = try receive(fd), !chunk.isEmpty else { throw failure("the connection closed mid-response") }
                buffer += chunk
            }
            response.body = Array(buffer.prefix(length))
        } else {
            while let chunk = try receive(fd), !chunk.isEmpty {
                buffer += chunk
                guard buffer.count <= Self.maxResponseBytes else { throw failure("the response is too large") }
            }
            response.body = buffer
        }
        return response
    }

    /// Asks for `path` with `Upgrade: msb-attach`. On `101` returns the socket, now a
    /// byte stream to the sandbox's supervisor; any other answer is thrown as its error.
    package func upgrade(path: String, refusal: (Response) -> MSBError) throws(MSBError) -> Int32 {
        let fd = try connect()
        do throws(MSBError) {
            try send(fd, head("GET", path, ["Connection: Upgrade", "Upgrade: \(RemoteWire.attachProtocol)"]))
            var buffer: [UInt8] = []
            var response = try readHead(fd, exact: true, into: &buffer)
            if response.status == 101 { return fd }
            let length = response.headers["content-length"].flatMap(Int.init) ?? 0
            while buffer.count < min(length, 1 << 20), let chunk = try receive(fd), !chunk.isEmpty { buffer += chunk }
            response.body = buffer
            close(fd)
            throw refusal(response)
        } catch {
            close(fd)
            throw error
        }
    }

    /// The request line and headers, with Host, User-Agent and the API key.
    private func head(_ method: String, _ path: String, _ headers: [String]) -> [UInt8] {
        let host = endpoint.host.contains(":") ? "[\(endpoint.host)]:\(endpoint.port)" : "\(endpoint.host):\(endpoint.port)"
        var lines = ["\(method) \(path) HTTP/1.1", "Host: \(host)", "User-Agent: msb"] + headers
        if let key = endpoint.apiKey { lines.append("Authorization: Bearer \(key)") }
        return Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
    }

    private func failure(_ why: String, hint: String? = nil) -> MSBError {
        MSBError(.agentFailure, "msb server at \(endpoint.url) failed: \(why)", hint: hint)
    }

    private func connect() throws(MSBError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard status == 0, let first = list else {
            throw MSBError(.agentFailure, "cannot reach msb server at \(endpoint.url): cannot resolve \(endpoint.host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = ECONNREFUSED
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            if fd < 0 { lastError = errno; continue }
            if connectWithTimeout(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, &lastError) {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            close(fd)
        }
        throw MSBError(.agentFailure, "cannot reach msb server at \(endpoint.url): \(String(cString: strerror(lastError)))",
                       hint: "check that 'msb server start' runs there, and --server / MSB_SERVER_URL")
    }

    private func connectWithTimeout(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>!, _ length: socklen_t, _ error: inout Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        if Glibc.connect(fd, address, length) == 0 { return true }
        guard errno == EINPROGRESS else { error = errno; return false }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, Int32(connectTimeoutSeconds * 1000)) == 1 else { error = ETIMEDOUT; return false }
        var soError: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &size)
        if soError != 0 { error = soError; return false }
        return true
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) throws(MSBError) {
        do { try FileDescriptorIO.writeAll(fd, bytes) } catch { throw failure("cannot send the request: \(error)") }
    }

    /// nil or empty at EOF.
    private func receive(_ fd: Int32, peek: Bool = false) throws(MSBError) -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, peek ? Int32(MSG_PEEK) : 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw failure("cannot read the response: \(String(cString: strerror(errno)))") }
            return Array(chunk[0..<n])
        }
    }

    /// Reads the status line and headers. With `exact`, consumes nothing past them (the
    /// bytes after a `101` belong to the upgraded stream); otherwise leaves the start of
    /// the body in `buffer`.
    private func readHead(_ fd: Int32, exact: Bool = false, into buffer: inout [UInt8]) throws(MSBError) -> Response {
        let terminator: [UInt8] = [13, 10, 13, 10]
        var seen: [UInt8] = []
        while true {
            guard let chunk = try receive(fd, peek: exact), !chunk.isEmpty else {
                throw failure("the connection closed before a response", hint: "is \(endpoint.url) an msb server?")
            }
            let searchable = seen + chunk
            if let end = ByteSearch.find(terminator, in: searchable) {
                let headEnd = end + 4
                if exact {
                    var discard = [UInt8](repeating: 0, count: headEnd - seen.count)
                    _ = recv(fd, &discard, discard.count, Int32(MSG_WAITALL))
                } else {
                    buffer = Array(searchable[headEnd...])
                }
                return try parseHead(Array(searchable[..<end]))
            }
            if exact {  // consume exactly what was peeked: all of it is header
                var discard = chunk
                _ = recv(fd, &discard, discard.count, Int32(MSG_WAITALL))
            }
            seen = searchable
            guard seen.count < 64 * 1024 else { throw failure("the response headers are too large") }
        }
    }

    private func parseHead(_ bytes: [UInt8]) throws(MSBError) -> Response {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw failure("not an HTTP response", hint: "is \(endpoint.url) an msb server?")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: [])
    }
}
