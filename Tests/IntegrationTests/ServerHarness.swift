import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// A real `msb server start` process on 127.0.0.1 (port chosen by the kernel), with its
/// own MSB_HOME under the test home and the test run's images. scripts/test.sh stops any
/// server a failed test leaves behind.
final class TestServer: @unchecked Sendable {
    let home: String
    let url: String
    let pid: Int32

    /// The suite's main server: API keys required.
    static let shared: TestServer = {
        do { return try TestServer(name: "srv") } catch { fatalError("cannot start the test server: \(error)") }
    }()

    /// `sharedImages`: use the test run's images (python, node) instead of its own, empty store.
    init(name: String, options: [String] = [], sharedImages: Bool = true) throws {
        home = MSBHarness.home + "/" + name
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MSBHarness.binary)
        process.arguments = ["server", "start", "--port", "0"] + options
        process.environment = MSBHarness.environment(["MSB_HOME": home, "MSB_IMAGES": sharedImages ? MSBHarness.home + "/images" : home + "/images"])
        FileManager.default.createFile(atPath: home + "/test-server.log", contents: nil)
        let log = FileHandle(forWritingAtPath: home + "/test-server.log")
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(30)
        var found: String?
        while found == nil && Date() < deadline {
            if let data = FileManager.default.contents(atPath: home + "/server/server.json"),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               object["pid"] as? Int32 == pid || (object["pid"] as? Int).map(Int32.init) == pid {
                found = object["url"] as? String
            } else {
                usleep(50_000)
            }
        }
        guard let found else { throw MSBError("the server did not start; see \(home)/test-server.log") }
        url = found
    }

    struct MSBError: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    /// Asks the server to stop (SIGTERM) and waits for it.
    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    func keygen(_ options: [String] = []) throws -> String {
        try MSBHarness.ok(["server", "keygen"] + options, env: ["MSB_HOME": home]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let adminKey: String = { (try? shared.keygen()) ?? "" }()

    /// Runs the CLI against this server. MSB_HOME points at an empty directory, so nothing
    /// can come from local state.
    @discardableResult
    func msb(_ arguments: [String], key: String?, namespace: String? = nil, stdin: Data? = nil) throws -> MSBResult {
        var env = ["MSB_SERVER_URL": url, "MSB_HOME": MSBHarness.home + "/client-home"]
        if let key { env["MSB_API_KEY"] = key }
        if let namespace { env["MSB_NAMESPACE"] = namespace }
        return try MSBHarness.run(arguments, stdin: stdin, env: env)
    }

    /// One HTTP exchange through URLSession (a real HTTP client, not msb's own).
    func http(_ method: String, _ path: String, body: Data? = nil, key: String? = nil,
              headers: [String: String] = [:]) throws -> (status: Int, body: Data) {
        var request = URLRequest(url: URL(string: url + path)!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 300
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let done = DispatchSemaphore(value: 0)
        let box = ResponseBox()
        URLSession.shared.dataTask(with: request) { data, response, error in
            box.status = (response as? HTTPURLResponse)?.statusCode ?? -1
            box.data = data ?? Data()
            box.error = error.map { "\($0)" }
            done.signal()
        }.resume()
        done.wait()
        if let error = box.error { throw MSBError(error) }
        return (box.status, box.data)
    }

    /// A JSON-RPC call: HTTP status and the decoded response object.
    func rpc(_ method: String, _ params: [String: Any], key: String? = TestServer.adminKey) throws -> (status: Int, json: [String: Any]) {
        let body = try JSONSerialization.data(withJSONObject: ["jsonrpc": "2.0", "method": method, "params": params, "id": UUID().uuidString])
        let (status, data) = try http("POST", "/api/v1/rpc", body: body, key: key)
        return (status, try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:])
    }
}

final class ResponseBox: @unchecked Sendable {
    var status = 0
    var data = Data()
    var error: String?
}
