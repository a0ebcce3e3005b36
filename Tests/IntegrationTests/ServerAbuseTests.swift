import Foundation
import Testing

/// A hostile client against a real `msb server` on 127.0.0.1, bounded: a slowloris request,
/// 500 idle connections, 100 long calls from one namespace while another works, attach and
/// output caps. Each test prints its figures to the test log.
@Suite(.serialized) struct ServerAbuseTests {
    /// Connections only: no sandboxes, small caps, a 3 s request deadline.
    static let connections: (server: TestServer, key: String) = {
        do {
            let server = try TestServer(name: "srv-conn", options: ["--max-connections", "200", "--request-timeout", "3s"], sharedImages: false)
            return (server, try server.keygen())
        } catch { fatalError("cannot start the connection test server: \(error)") }
    }()

    @Test func slowlorisIsCutOffAtTheDeadlineWhileOthersAreAnswered() throws {
        let (server, _) = Self.connections
        let port = RawHTTP.port(of: server.url)
        let fd = try #require(RawHTTP.connect(port: port, receiveTimeoutSeconds: 10))
        defer { close(fd) }
        let started = Date()
        #expect(RawHTTP.send(fd, "POST /api/v1/rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
        var cutAfter: Double?
        var healthSeconds: [Double] = []
        // One header byte every 250 ms (the idle timer alone would never fire), for at most 10 s.
        for (index, byte) in "X-Slow: \(String(repeating: "a", count: 60))".enumerated() {
            if RawHTTP.closedByPeer(fd) || !RawHTTP.send(fd, String(byte)) {
                cutAfter = Date().timeIntervalSince(started)
                break
            }
            if index % 4 == 0 {
                let asked = Date()
                #expect(RawHTTP.request(port: port, "GET", "/api/v1/health").status == 200)
                healthSeconds.append(Date().timeIntervalSince(asked))
            }
            usleep(250_000)
            if Date().timeIntervalSince(started) > 10 { break }
        }
        print("abuse: slowloris cut off after \(cutAfter.map { String(format: "%.2f", $0) } ?? "never")s (deadline 3s); "
              + "\(healthSeconds.count) health checks meanwhile, slowest \(String(format: "%.3f", healthSeconds.max() ?? 0))s")
        let cut = try #require(cutAfter, "the slowloris connection was never closed")
        #expect(cut >= 2.5 && cut < 6)
        #expect((healthSeconds.max() ?? 0) < 1)
    }

    @Test func fiveHundredIdleConnectionsCannotLockOutARealCall() throws {
        let (server, key) = Self.connections
        let port = RawHTTP.port(of: server.url)
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        for _ in 0..<500 {
            if let fd = RawHTTP.connect(port: port) { sockets.append(fd) }
        }
        #expect(sockets.count == 500)
        let asked = Date()
        let call = RawHTTP.rpc(port: port, "sandbox.list", ["namespace": "team-b"], key: key)
        let seconds = Date().timeIntervalSince(asked)
        #expect(call.status == 200 && call.json["result"] != nil, "\(call)")
        usleep(500_000)
        let closed = sockets.filter(RawHTTP.closedByPeer).count
        print("abuse: 500 idle connections against a cap of 200: \(500 - closed) held, \(closed) closed by the server to make room; "
              + "a real call answered in \(String(format: "%.3f", seconds))s")
        #expect(seconds < 2)
        #expect(closed >= 300 && 500 - closed <= 200)
        #expect(RawHTTP.request(port: port, "GET", "/api/v1/health").status == 200)
    }

    /// One booted sandbox per namespace; stopped (with the server) at the end.
    @Test func oneNamespaceCannotStarveAnother() throws {
        let server = try TestServer(name: "srv-ns", options: [
            "--max-calls-per-namespace", "8", "--max-sandboxes-per-namespace", "1", "--max-attach-sessions", "1",
        ], sharedImages: false)
        defer { server.stop() }
        let key = try server.keygen()
        let port = RawHTTP.port(of: server.url)
        for namespace in ["team-a", "team-b"] {
            let started = RawHTTP.rpc(port: port, "sandbox.start", ["namespace": namespace, "sandbox": "box"], key: key, timeoutSeconds: 300)
            try #require(started.json["result"] as? String == "Sandbox box started successfully", "\(started.json)")
        }
        @Sendable func run(_ namespace: String, _ command: String, _ args: [String], timeout: Int = 60) -> (status: Int, json: [String: Any]) {
            RawHTTP.rpc(port: port, "sandbox.command.run", ["namespace": namespace, "sandbox": "box", "command": command,
                                                            "args": args, "timeout": timeout], key: key, timeoutSeconds: timeout + 30)
        }

        // 100 sleeps from team-a at once; team-b keeps working meanwhile.
        let outcomes = Outcomes()
        let done = DispatchGroup()
        for _ in 0..<100 {
            done.enter()
            Thread.detachNewThread {
                let answer = run("team-a", "sleep", ["8"])
                outcomes.add(answer.status, (answer.json["error"] as? [String: Any]).map { ($0["code"] as? Int ?? 0, $0["message"] as? String ?? "") },
                             exitCode: (answer.json["result"] as? [String: Any])?["exit_code"] as? Int)
                done.leave()
            }
        }
        usleep(1_000_000)
        var latencies: [Double] = []
        for _ in 0..<20 {
            let asked = Date()
            let answer = run("team-b", "true", [])
            latencies.append(Date().timeIntervalSince(asked))
            #expect((answer.json["result"] as? [String: Any])?["exit_code"] as? Int == 0, "\(answer.json)")
        }
        latencies.sort()
        let p50 = latencies[latencies.count / 2], p99 = latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))]
        #expect(done.wait(timeout: .now() + 90) == .success)
        let (finished, refused, message) = outcomes.summary
        print("abuse: namespace team-b command.run during 100 sleep calls from team-a: p50 \(String(format: "%.3f", p50))s, "
              + "p99 \(String(format: "%.3f", p99))s (n=\(latencies.count)); team-a: \(finished) ran, \(refused) refused with 429")
        #expect(p99 < 2)
        #expect(finished >= 1 && refused >= 80 && finished + refused == 100)
        #expect(message == "namespace team-a already has 8 calls running, the most this server allows one namespace")

        // A second running sandbox in team-b is over its share.
        let extra = RawHTTP.rpc(port: port, "sandbox.start", ["namespace": "team-b", "sandbox": "extra"], key: key)
        let extraError = extra.json["error"] as? [String: Any] ?? [:]
        #expect(extraError["code"] as? Int == -32007)
        #expect(extraError["message"] as? String == "namespace limit reached: at most 1 sandboxes may run at once in namespace team-b")

        // `yes ''` output: the line cap holds, with its note.
        let flood = run("team-b", "sh", ["-c", "yes '' | head -c 4194304"], timeout: 300)
        let lines = (flood.json["result"] as? [String: Any])?["output"] as? [[String: String]] ?? []
        print("abuse: 4 MiB of empty lines became \(lines.count) output lines")
        #expect(lines.filter { $0["stream"] == "stdout" }.count == 100_000)
        #expect(lines.last == ["stream": "stderr", "text": "msb: stdout cut after 100000 lines (4094304 more bytes not kept)"])

        // The attach cap (1 here): a second stream is refused with 429 and exit code 75.
        let env = ["MSB_SERVER_URL": server.url, "MSB_API_KEY": key, "MSB_NAMESPACE": "team-b", "MSB_HOME": MSBHarness.home + "/client-home"]
        let holder = DataBox()
        Thread.detachNewThread {
            _ = try? MSBHarness.run(["exec", "box", "--", "sh", "-c", "touch /tmp/held; sleep 5"], env: env)
            holder.done.signal()
        }
        // Once the first stream runs (checked through a call, which needs no stream).
        for _ in 0..<100 {
            if (run("team-b", "test", ["-e", "/tmp/held"]).json["result"] as? [String: Any])?["exit_code"] as? Int == 0 { break }
            usleep(50_000)
        }
        let refusal = try MSBHarness.run(["exec", "box", "--", "true"], env: env)
        #expect(refusal.status == 75)
        #expect(refusal.stderr == "error: the server already has 1 attach sessions (exec, shell, repl, cp) open, its limit\n"
                + "  → retry when one has ended (the server's operator sets --max-attach-sessions)\n")
        holder.done.wait()
        usleep(300_000)
        #expect(try MSBHarness.run(["exec", "box", "--", "true"], env: env).status == 0)

        #expect(RawHTTP.request(port: port, "GET", "/api/v1/health").status == 200)
    }
}

final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var finished = 0, refused = 0
    private var message = ""

    func add(_ status: Int, _ error: (code: Int, message: String)?, exitCode: Int?) {
        lock.withLock {
            if status == 200 && exitCode == 0 { finished += 1 }
            if status == 429, let error, error.code == -32008 {
                refused += 1
                message = error.message
            }
        }
    }

    var summary: (Int, Int, String) { lock.withLock { (finished, refused, message) } }
}
