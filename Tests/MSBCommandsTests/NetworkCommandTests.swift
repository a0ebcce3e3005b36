import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// The network options of create and run, `msb port`, and the network in `ls --format json`
/// and `msb metrics`, against a backend the test controls.
@Suite struct NetworkCommandTests {
    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        let out = FakeBackendCommandTests.Recorder(), err = FakeBackendCommandTests.Recorder()
        let context = CommandContext(environment: ["HOME": "/nonexistent"], makeBackend: { backend },
                                     standardOutput: { out.append($0) }, standardError: { err.append($0) })
        let status = CLI.main(arguments, context: context)
        return (status, out.value, err.value)
    }

    /// The network `create ARGS` hands the backend (the fake one refuses to create it).
    func network(_ arguments: [String]) -> NetworkPolicy?? {
        let backend = FakeBackend(sandboxes: [])
        _ = run(["create", "--name", "n"] + arguments, backend)
        return backend.createdConfigs.first.map(\.network)
    }

    func usageError(_ arguments: [String]) -> String? {
        let backend = FakeBackend(sandboxes: [])
        let result = run(arguments, backend)
        guard result.status == 2, backend.calls.isEmpty, result.out.isEmpty else { return nil }
        return result.err
    }

    @Test func aSandboxHasTheDefaultNetworkUnlessToldOtherwise() throws {
        #expect(network([]) == .some(NetworkPolicy()))
        #expect(network(["--no-net"]) == .some(nil))
        let shaped = try #require(network(["-p", "8080:80", "--publish=127.0.0.1:5353:53/udp", "--allow-host",
                                           "--net-allow", "10.20.1.1/16", "--net-allow", "10.30.1.5:5432", "--net-deny", "1.1.1.1"]) ?? nil)
        #expect(shaped.publishedPorts == [PublishedPort(hostPort: 8080, guestPort: 80),
                                          PublishedPort(hostPort: 5353, guestPort: 53, transport: .udp)])
        #expect(shaped.allowHost && !shaped.unrestricted)
        #expect(shaped.allowed == [EgressRule(network: "10.20.0.0/16"), EgressRule(network: "10.30.1.5/32", port: 5432)])
        #expect(shaped.denied == [EgressRule(network: "1.1.1.1/32")])
        #expect((network(["--net-unrestricted"]) ?? nil)?.unrestricted == true)
        // Host-side options: a fork from a snapshot may have them.
        #expect((network(["--from", "ready", "-p", "8080:80"]) ?? nil)?.publishedPorts.count == 1)
    }

    @Test func noNetWithOtherNetworkOptionsIsAUsageError() {
        #expect(usageError(["create", "--no-net", "-p", "8080:80"])
                == "error: --no-net leaves the sandbox without a network; drop -p/--publish or drop --no-net\n")
        #expect(usageError(["create", "--no-net", "--allow-host", "--net-allow", "10.0.0.0/8", "--net-unrestricted"])
                == "error: --no-net leaves the sandbox without a network; drop --allow-host, --net-allow and --net-unrestricted or drop --no-net\n")
        #expect(usageError(["run", "--no-net", "--net-deny", "1.1.1.1", "--", "true"])
                == "error: --no-net leaves the sandbox without a network; drop --net-deny or drop --no-net\n")
    }

    @Test func badPublicationsAndRulesAreUsageErrors() {
        #expect(usageError(["create", "-p", "80"])
                == "error: invalid port publication '80'\n  → use [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp], for example 8080:80 or 127.0.0.1:5353:53/udp\n")
        #expect(usageError(["create", "-p", "8080:80", "-p", "0.0.0.0:8080:81"])
                == "error: published ports overlap: 127.0.0.1:8080:80/tcp and 0.0.0.0:8080:81/tcp both bind host port 8080/tcp\n  → publish each host port once\n")
        #expect(usageError(["create", "--net-allow", "10.0.0.0/33"])
                == "error: invalid network rule '10.0.0.0/33'\n  → use CIDR[:PORT], for example 10.20.0.0/16, 10.30.1.5:5432 or [fd00::/8]:443\n")
        #expect(usageError(["run", "--net-unrestricted", "--net-allow", "10.0.0.0/8", "--", "true"])
                == "error: --net-unrestricted turns the egress filter off, so --net-allow would do nothing; drop one or the other\n")
        #expect(usageError(["create", "--no-net=yes"]) != nil)
    }

    static func web(_ network: NetworkPolicy?) -> SandboxInfo {
        var info = FakeBackend.info("web", .running)
        info.config.network = network
        return info
    }

    static let published = NetworkPolicy(publishedPorts: [PublishedPort(hostPort: 8080, guestPort: 80),
                                                          PublishedPort(hostAddress: "::1", hostPort: 5353, guestPort: 53, transport: .udp),
                                                          PublishedPort(hostAddress: "0.0.0.0", hostPort: 9000, guestPort: 90, count: 3)],
                                         allowed: [EgressRule(network: "10.20.0.0/16")])

    @Test func portListsPublicationsLikeDockerPort() throws {
        let backend = FakeBackend(sandboxes: [Self.web(Self.published)])
        let table = run(["port", "web"], backend)
        #expect(table.status == 0)
        #expect(table.out == "80/tcp -> 127.0.0.1:8080\n53/udp -> [::1]:5353\n90-92/tcp -> 0.0.0.0:9000-9002\n")
        let json = run(["port", "web", "--format", "json"], backend)
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        #expect(objects.count == 3)
        #expect(Set(objects[0].keys) == ["host_address", "host_port", "guest_port", "count", "protocol"])
        #expect(objects[1]["host_address"] as? String == "::1" && objects[1]["protocol"] as? String == "udp")
        #expect(objects[2]["host_port"] as? Int == 9000 && objects[2]["guest_port"] as? Int == 90 && objects[2]["count"] as? Int == 3)
    }

    @Test func portPrintsNothingWithoutPublicationsAndFailsForUnknownSandboxes() {
        let none = FakeBackend(sandboxes: [Self.web(nil)])
        #expect(run(["port", "web"], none).out == "")
        #expect(run(["port", "web", "--format", "json"], none).out == "[]\n")
        let ghost = run(["port", "ghost"], none)
        #expect(ghost.status == 1)
        #expect(ghost.err == "error: sandbox not found: ghost\n  → run 'msb ls' to see sandboxes\n")
        #expect(run(["port"], none).status == 2)
        #expect(run(["port", "web", "--format", "yaml"], none).status == 2)
    }

    @Test func listJSONShowsTheNetworkOrNull() throws {
        var plain = Self.web(NetworkPolicy())
        plain.config.name = "plain"
        let backend = FakeBackend(sandboxes: [Self.web(Self.published), Self.web(nil), plain])
        let json = run(["ls", "--format", "json"], backend)
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        let network = try #require(objects[0]["network"] as? [String: Any])
        #expect(Set(network.keys) == ["ports", "allow_host", "allowed", "denied", "unrestricted"])
        #expect((network["ports"] as? [[String: Any]])?.first?["host_port"] as? Int == 8080)
        #expect(network["allowed"] as? [String] == ["10.20.0.0/16"])
        #expect(objects[1]["network"] is NSNull)
        #expect((objects[2]["network"] as? [String: Any])?["ports"] as? [Any] != nil)
    }

    @Test func theWireShapeCarriesTheNetworkBothWays() throws {
        let info = Self.web(Self.published)
        let data = try JSONEncoder().encode(RemoteWire.Sandbox(info))
        let back = try JSONDecoder().decode(RemoteWire.Sandbox.self, from: data).info
        #expect(back.config.network == Self.published)
        let none = try JSONDecoder().decode(RemoteWire.Sandbox.self, from: JSONEncoder().encode(RemoteWire.Sandbox(Self.web(nil))))
        #expect(none.info.config.network == nil)
        // A server answering nonsense gets no publication trusted.
        var wire = RemoteWire.Port(PublishedPort(hostPort: 65_535, guestPort: 80))
        wire.count = 2
        #expect(wire.publishedPort == nil)
        wire.count = 1
        wire.protocol = "sctp"
        #expect(wire.publishedPort == nil)
    }

    @Test func metricsShowNetworkBytes() throws {
        var metrics = SandboxMetrics(name: "web", status: .running, memoryLimitMiB: 512)
        metrics.networkReceivedBytes = 1_500_000
        metrics.networkSentBytes = 2_000
        let table = MetricsCommand.table([metrics])
        let lines = table.split(separator: "\n")
        #expect(lines.first?.split(separator: " ") == ["NAME", "STATUS", "CPU%", "MEM(MiB)", "MEM-LIMIT", "DISK", "NET-RX", "NET-TX", "UPTIME"])
        #expect(lines.last?.contains("1.5MB") == true && lines.last?.contains("2.0KB") == true)
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(MetricsCommand.jsonText([metrics], single: true).utf8)) as? [String: Any])
        #expect(detail["network_rx_bytes"] as? Int == 1_500_000 && detail["network_tx_bytes"] as? Int == 2_000)
        // The SDK contract's shape keeps exactly its keys.
        let contract = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(RemoteWire.Metrics(metrics, detail: false))) as? [String: Any])
        #expect(Set(contract.keys) == ["name", "namespace", "running", "cpu_usage", "memory_usage", "disk_usage"])
        let decoded = try JSONDecoder().decode(RemoteWire.Metrics.self, from: JSONEncoder().encode(RemoteWire.Metrics(metrics, detail: true)))
        #expect(decoded.metrics.networkReceivedBytes == 1_500_000 && decoded.metrics.networkSentBytes == 2_000)
    }
}
