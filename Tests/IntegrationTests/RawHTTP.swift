import Foundation
import Testing

/// Plain sockets to a server on 127.0.0.1, for the abuse tests: many connections at once,
/// requests sent byte by byte, and exact control over when a connection is used or closed
/// (URLSession pools and limits its connections).
enum RawHTTP {
    /// A connected TCP socket with a receive timeout.
    static func connect(port: Int, receiveTimeoutSeconds: Int = 30) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func send(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Everything the server sends until it closes (or the receive timeout).
    static func readAll(_ fd: Int32) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return data
    }

    /// True when the server has closed the connection (EOF or reset), without waiting.
    static func closedByPeer(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) <= 0
    }

    /// One request on its own connection (`Connection: close`): status and body.
    static func request(port: Int, _ method: String, _ path: String, body: String = "", key: String? = nil,
                        timeoutSeconds: Int = 60) -> (status: Int, body: String) {
        guard let fd = connect(port: port, receiveTimeoutSeconds: timeoutSeconds) else { return (-1, "connect failed") }
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Type: application/json\r\n"
        if let key { head += "Authorization: Bearer \(key)\r\n" }
        head += "Content-Length: \(body.utf8.count)\r\n\r\n"
        guard send(fd, head + body) else { return (-1, "send failed") }
        let text = String(decoding: readAll(fd), as: UTF8.self)
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? -1
        let payload = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (status, payload)
    }

    /// A JSON-RPC call: HTTP status and the decoded response.
    static func rpc(port: Int, _ method: String, _ params: [String: Any], key: String?, timeoutSeconds: Int = 60)
        -> (status: Int, json: [String: Any]) {
        let envelope: [String: Any] = ["jsonrpc": "2.0", "method": method, "params": params, "id": UUID().uuidString]
        let body = String(decoding: (try? JSONSerialization.data(withJSONObject: envelope)) ?? Data(), as: UTF8.self)
        let (status, payload) = request(port: port, "POST", "/api/v1/rpc", body: body, key: key, timeoutSeconds: timeoutSeconds)
        return (status, (try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]) ?? [:])
    }

    static func port(of url: String) -> Int { Int(url.split(separator: ":").last ?? "") ?? 0 }
}
