import Foundation
import MSBClient
import MSBCore
@testable import MSBServer
import Testing

/// Sandbox networks asked for by remote clients: what reaches the backend, and the 403s
/// for what only the operator can open. No VMs: refusals happen before anything boots.
@Suite struct NetworkRPCTests {
    let home = NSTemporaryDirectory() + "msbnet-\(UUID().uuidString.prefix(8))"

    func dispatcher(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> RPCDispatcher {
        var configuration = ServerConfiguration(paths: MSBPaths(environment: ["MSB_HOME": home]))
        configure(&configuration)
        return RPCDispatcher(configuration: configuration, host: SandboxHost(paths: configuration.paths, limits: configuration.limits),
                             authority: nil)
    }

    func call(_ method: String, _ params: String, on d: RPCDispatcher) throws -> (status: Int, code: Int, message: String) {
        let body = #"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params),"id":"n1"}"#
        let reply = d.handle(body: Array(body.utf8), authorization: nil)
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] ?? [:]
        let error = json["error"] as? [String: Any] ?? [:]
        return (reply.status, error["code"] as? Int ?? 0, error["message"] as? String ?? "")
    }

    /// The config a `sandbox.start` / `sandbox.create` with this `config` object hands the backend.
    func config(_ json: String, on d: RPCDispatcher) throws -> SandboxConfig {
        let params = try JSONDecoder().decode(RPC.SandboxConfigParams.self, from: Data(json.utf8))
        return try d.sandboxConfig(name: "web", params)
    }

    static func allowing(_ configuration: inout ServerConfiguration) {
        configuration.portAllowList = [PortAllowance(ports: 8000...8999), PortAllowance(address: "0.0.0.0", ports: 9000...9000)]
        configuration.netAllowList = [EgressRule(network: "10.20.0.0/16"), EgressRule(network: "10.30.0.0/16", port: 5432)]
    }

    @Test func sdkPortsInsideTheAllowListReachTheBackend() throws {
        let d = dispatcher(Self.allowing)
        let web = try config(#"{"image":"python","ports":["8080:80","8998-8999:98-99/udp","0.0.0.0:9000:90"]}"#, on: d)
        #expect(web.network?.publishedPorts == [
            PublishedPort(hostPort: 8080, guestPort: 80),
            PublishedPort(hostPort: 8998, guestPort: 98, count: 2, transport: .udp),
            PublishedPort(hostAddress: "0.0.0.0", hostPort: 9000, guestPort: 90),
        ])
        #expect(web.network?.allowHost == false && web.network?.unrestricted == false)
    }

    @Test func portsOutsideTheAllowListAre403() throws {
        let none = dispatcher()
        let refused = try call("sandbox.start", #"{"sandbox":"v","config":{"ports":["8080:80"]}}"#, on: none)
        #expect(refused.status == 403 && refused.code == -32004)
        #expect(refused.message == "port 8080 is not allowed by this server (--allow-port)")
        let d = dispatcher(Self.allowing)
        let outside = try call("sandbox.start", #"{"sandbox":"v","config":{"ports":["9001:80"]}}"#, on: d)
        #expect(outside.status == 403 && outside.message == "port 9001 is not allowed by this server (--allow-port)")
        let straddling = try call("sandbox.create", #"{"sandbox":"v","config":{"ports":["8999-9000:80-81"]}}"#, on: d)
        #expect(straddling.status == 403 && straddling.message == "ports 8999-9000 are not allowed by this server (--allow-port)")
        let wildcard = try call("sandbox.start", #"{"sandbox":"v","config":{"ports":["0.0.0.0:8080:80"]}}"#, on: d)
        #expect(wildcard.status == 403)
        #expect(wildcard.message == "publishing on 0.0.0.0 is not allowed by this server: remote clients publish on 127.0.0.1 unless an --allow-port rule names the address")
        let malformed = try call("sandbox.start", #"{"sandbox":"v","config":{"ports":["8080"]}}"#, on: d)
        #expect(malformed.status == 200 && malformed.code == -32602 && malformed.message == "invalid port publication '8080'")
        let overlapping = try call("sandbox.start", #"{"sandbox":"v","config":{"ports":["8080:80","8080:81"]}}"#, on: d)
        #expect(overlapping.code == -32602 && overlapping.message.hasPrefix("published ports overlap"))
        let many = "[" + (1...65).map { "\"\(8000 + $0):80\"" }.joined(separator: ",") + "]"
        let tooMany = try call("sandbox.start", #"{"sandbox":"v","config":{"ports":\#(many)}}"#, on: d)
        #expect(tooMany.code == -32602 && tooMany.message == "invalid params: at most 64 'ports'")
    }

    @Test func netAllowMustLieInsideTheNamespaceRanges() throws {
        let d = dispatcher(Self.allowing)
        let inside = try config(#"{"net_allow":["10.20.5.0/24","10.30.1.5:5432"],"net_deny":["8.8.8.8"]}"#, on: d)
        #expect(inside.network?.allowed == [EgressRule(network: "10.20.5.0/24"), EgressRule(network: "10.30.1.5/32", port: 5432)])
        #expect(inside.network?.denied == [EgressRule(network: "8.8.8.8/32")])
        let wide = try call("sandbox.start", #"{"sandbox":"v","config":{"net_allow":["10.0.0.0/8"]}}"#, on: d)
        #expect(wide.status == 403 && wide.message == "--net-allow 10.0.0.0/8 is not allowed by this server (--namespace-net-allow)")
        let otherPort = try call("sandbox.start", #"{"sandbox":"v","config":{"net_allow":["10.30.1.5:22"]}}"#, on: d)
        #expect(otherPort.status == 403)
        let none = try call("sandbox.start", #"{"sandbox":"v","config":{"net_allow":["10.20.0.0/16"]}}"#, on: dispatcher())
        #expect(none.status == 403)
    }

    @Test func theHostAndAnUnfilteredNetworkNeedTheOperatorsConsent() throws {
        let d = dispatcher()
        let host = try call("sandbox.start", #"{"sandbox":"v","config":{"allow_host":true}}"#, on: d)
        #expect(host.status == 403 && host.message == "--allow-host is not allowed by this server (--remote-allow-host)")
        let open = try call("sandbox.create", #"{"sandbox":"v","config":{"net_unrestricted":true}}"#, on: d)
        #expect(open.status == 403 && open.message == "--net-unrestricted is not allowed by this server (--remote-net-unrestricted)")
        let consenting = dispatcher { $0.remoteAllowHost = true; $0.remoteNetUnrestricted = true }
        let both = try config(#"{"allow_host":true,"net_unrestricted":true}"#, on: consenting)
        #expect(both.network?.allowHost == true && both.network?.unrestricted == true)
    }

    @Test func theDefaultNetworkIsTheServersChoice() throws {
        let on = dispatcher()
        #expect(try config(#"{"image":"python"}"#, on: on).network == NetworkPolicy())
        #expect(try on.sandboxConfig(name: "web", nil).network == NetworkPolicy())
        #expect(try config(#"{"network":false}"#, on: on).network == nil)
        let off = dispatcher { $0.defaultNetwork = false }
        #expect(try config(#"{"image":"python"}"#, on: off).network == nil)
        #expect(try off.sandboxConfig(name: "web", nil).network == nil)
        #expect(try config(#"{"network":true}"#, on: off).network == NetworkPolicy())
        let contradiction = try call("sandbox.start", #"{"sandbox":"v","config":{"network":false,"ports":["8080:80"],"allow_host":true}}"#, on: on)
        #expect(contradiction.code == -32602)
        #expect(contradiction.message == "invalid params: 'network' false leaves the sandbox without a network; drop 'ports', 'allow_host'")
    }

    /// `msb --server URL create …` sends the CLI's config; the server rebuilds the same one.
    @Test func aRemoteCreateCarriesTheWholePolicy() throws {
        let d = dispatcher { Self.allowing(&$0); $0.remoteAllowHost = true; $0.defaultNetwork = false }
        var local = SandboxConfig(name: "web")
        local.network = NetworkPolicy(publishedPorts: [try .parse("8080:80"), try .parse("8081:53/udp")], allowHost: true,
                                      allowed: [try .parse("10.20.1.0/24")], denied: [try .parse("[2001:db8::/32]:443")])
        let params = try JSONDecoder().decode(RPC.SandboxConfigParams.self, from: JSONEncoder().encode(RPC.SandboxConfigParams(local)))
        #expect(try d.sandboxConfig(name: "web", params).network == local.network)
        local.network = nil
        #expect(try d.sandboxConfig(name: "web", RPC.SandboxConfigParams(local)).network == nil)
        // The default policy is left unsaid: the server's --default-net decides.
        local.network = NetworkPolicy()
        #expect(RPC.SandboxConfigParams(local).network == nil)
        #expect(try d.sandboxConfig(name: "web", RPC.SandboxConfigParams(local)).network == nil)
    }

    @Test func allowPortRulesParseAndPrintBack() throws {
        #expect(try PortAllowance.parse("8000-8999") == PortAllowance(ports: 8000...8999))
        #expect(try PortAllowance.parse("127.0.0.1:8080") == PortAllowance(address: "127.0.0.1", ports: 8080...8080))
        #expect(try PortAllowance.parse("[::1]:8000-8099") == PortAllowance(address: "::1", ports: 8000...8099))
        for text in ["8000-8999", "0.0.0.0:80", "[::]:1-65535"] {
            #expect(try PortAllowance.parse(text).description == text)
        }
        for bad in ["", "0", "65536", "9000-8000", "host:80", "::1:80", "[::1]80", "80-", "1.2.3.4:", "8000-8100-8200"] {
            let error = #expect(throws: MSBError.self, "\(bad)") { try PortAllowance.parse(bad) }
            #expect(error?.message == "invalid --allow-port '\(bad)'")
        }
    }
}
