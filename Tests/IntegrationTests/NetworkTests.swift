import Foundation
import Testing

/// Sandbox networking with the real passt and nftables. Every packet these tests make goes
/// to the host's loopback or into a network namespace the test made (a veth pair): the
/// guest's gateway address is passt's mapping of the host's loopback, and the "private"
/// server lives inside the namespace, so even a broken filter cannot send anything
/// elsewhere. Nothing here needs or uses the host's real network.
@Suite(.serialized) struct NetworkTests {
    /// The guest side: connects to PORT on each host given and prints what it read, or
    /// that it was blocked.
    static let probe = """
    import socket, sys
    for host in sys.argv[2:]:
        try:
            s = socket.create_connection((host, int(sys.argv[1])), timeout=5)
            print(host, s.recv(64).decode().strip())
        except Exception as e:
            print(host, "blocked", type(e).__name__)
    """

    /// A one-line TCP server on the host (in `namespace` when given): prints its port, then
    /// greets every connection with `greeting`.
    static func startServer(address: String, greeting: String, namespace: String? = nil) throws -> (process: Process, port: Int) {
        // It ends when its stdin closes (the test process ending included): a killed test
        // leaves no server behind holding the test runner's output open.
        let script = """
        import os, socket, sys, threading
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
        s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(8)
        print(s.getsockname()[1], flush=True)
        while True:
            c, _ = s.accept(); c.sendall(sys.argv[2].encode() + b"\\n"); c.close()
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: namespace == nil ? "/usr/bin/python3" : "/usr/sbin/ip")
        process.arguments = (namespace.map { ["netns", "exec", $0, "python3"] } ?? []) + ["-c", script, address, greeting]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = Pipe()
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(10) {
            let chunk = out.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            line.append(chunk)
        }
        let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        try #require(port > 0, "the test server did not start")
        return (process, port)
    }

    /// Ends a server from startServer: its stdin closes (it exits by itself), then SIGTERM.
    static func stop(_ server: Process) {
        try? (server.standardInput as? Pipe)?.fileHandleForWriting.close()
        server.terminate()
    }

    @discardableResult
    static func sh(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try? process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    static func hostPython(_ script: String, _ arguments: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The host's ruleset holds the sandbox's table (its comment names the sandbox).
    static func hasFilterTable(_ name: String) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nft")
        process.arguments = ["list", "ruleset"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.contains("comment \"msb sandbox \(name)\"")
    }

    /// Waits up to `seconds` for `condition`.
    static func eventually(_ seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    static func supervisor(of name: String) -> Int32? {
        MSBHarness.processes(matching: "_supervise \(name)").first
    }

    /// The command names of `pid`'s children.
    static func children(of pid: Int32) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.compactMap { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == pid else { return nil }
            return String(stat[stat.index(after: open)..<close])
        }
    }

    /// A free loopback port for a publication (bound and released at once).
    static func freePort(udp: Bool = false) throws -> Int {
        let script = "import socket; s = socket.socket(type=socket.SOCK_\(udp ? "DGRAM" : "STREAM")); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
        return Int(try hostPython(script).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    @Test func publishedPortsReachTheGuestAndTheHostAndPrivateRangesAreClosedUnlessOpened() throws {
        #expect(ImageTests.built)
        let open = MSBHarness.uniqueName("net-open"), allowed = MSBHarness.uniqueName("net-allowed"), clash = MSBHarness.uniqueName("net-clash")
        // A namespace with a veth pair: the "private" server lives on its 10.x address only.
        let tag = getpid() % 10_000, octet = Int(getpid() % 200) + 20
        let namespace = "msbt\(tag)", hostEnd = "vmsb\(tag)a", nsEnd = "vmsb\(tag)b"
        let subnet = "10.199.\(octet)"
        defer {
            _ = try? MSBHarness.run(["rm", "-f", open, allowed, clash])
            Self.sh("ip netns del \(namespace) 2>/dev/null; ip link del \(hostEnd) 2>/dev/null")
        }
        #expect(Self.sh("""
            set -e; ip netns add \(namespace); ip link add \(hostEnd) type veth peer name \(nsEnd)
            ip link set \(nsEnd) netns \(namespace); ip addr add \(subnet).1/30 dev \(hostEnd); ip link set \(hostEnd) up
            ip -n \(namespace) addr add \(subnet).2/30 dev \(nsEnd); ip -n \(namespace) link set \(nsEnd) up; ip -n \(namespace) link set lo up
            """) == 0)
        let hostServer = try Self.startServer(address: "127.0.0.1", greeting: "hello-host")
        defer { Self.stop(hostServer.process) }
        let privateServer = try Self.startServer(address: "\(subnet).2", greeting: "hello-private", namespace: namespace)
        defer { Self.stop(privateServer.process) }

        let tcpPort = try Self.freePort(), udpPort = try Self.freePort(udp: true)
        try MSBHarness.ok(["create", "--name", open, "--image", "python", "-p", "\(tcpPort):8000", "-p", "127.0.0.1:\(udpPort):5300/udp"])
        #expect(try Self.hasFilterTable(open))

        // Published TCP: a web server in the guest answers on the host's loopback.
        try MSBHarness.ok(["exec", open, "--", "sh", "-c",
                           "mkdir -p /root/www && echo published > /root/www/f && cd /root/www && nohup python3 -m http.server 8000 >/dev/null 2>&1 &"])
        let fetch = "import urllib.request, sys; print(urllib.request.urlopen('http://127.0.0.1:%s/f' % sys.argv[1], timeout=5).read().decode().strip())"
        #expect(try Self.eventually(15) { (try? Self.hostPython(fetch, ["\(tcpPort)"])) == "published\n" })
        // Published UDP: an echo server in the guest.
        try MSBHarness.ok(["exec", open, "--", "sh", "-c", """
            nohup python3 -c 'import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5300))
            while True:
                d, a = s.recvfrom(2048); s.sendto(d.upper(), a)' >/dev/null 2>&1 &
            """])
        let echo = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        for _ in range(15):
            s.sendto(b"ping", ("127.0.0.1", int(sys.argv[1])))
            try:
                print(s.recv(64).decode()); break
            except socket.timeout:
                pass
        """
        #expect(try Self.hostPython(echo, ["\(udpPort)"]) == "PING\n")

        // The host's own services and the private range are closed by default...
        let closed = try MSBHarness.ok(["exec", open, "--", "python3", "-c", Self.probe, "\(hostServer.port)", "10.0.2.2", "host.msb.internal"])
            + MSBHarness.ok(["exec", open, "--", "python3", "-c", Self.probe, "\(privateServer.port)", "\(subnet).2"])
        let lines = closed.split(separator: "\n")
        #expect(lines.count == 3 && lines.allSatisfy { $0.contains(" blocked ") }, "\(closed)")

        // ...and open with --allow-host and --net-allow for exactly that range.
        try MSBHarness.ok(["create", "--name", allowed, "--image", "python", "--allow-host", "--net-allow", "\(subnet).0/30"])
        let reached = try MSBHarness.ok(["exec", allowed, "--", "python3", "-c", Self.probe, "\(hostServer.port)", "10.0.2.2", "host.msb.internal"])
            + MSBHarness.ok(["exec", allowed, "--", "python3", "-c", Self.probe, "\(privateServer.port)", "\(subnet).2"])
        #expect(reached == "10.0.2.2 hello-host\nhost.msb.internal hello-host\n\(subnet).2 hello-private\n")

        // Two sandboxes cannot publish one host port: the second is refused, and not made.
        let refused = try MSBHarness.run(["create", "--name", clash, "-p", "\(tcpPort):80"])
        #expect(refused.status == 1)
        #expect(refused.stderr == "error: cannot publish 127.0.0.1:\(tcpPort)/tcp: the port is already in use\n  → choose another host port, or stop what uses it\n")
        #expect(try MSBHarness.listed(clash) == nil)

        // The guest's interface counted the traffic.
        let metrics = try MSBHarness.ok(["metrics", open, "--format", "json"])
        #expect(metrics.contains("network_rx_bytes") && !metrics.contains("\"network_rx_bytes\":0"), "\(metrics)")

        // msb port lists the publications.
        #expect(try MSBHarness.ok(["port", open]) == "8000/tcp -> 127.0.0.1:\(tcpPort)\n5300/udp -> 127.0.0.1:\(udpPort)\n")

        // The rules go with the sandbox: after a stop, after a supervisor killed with
        // SIGKILL (the kernel drops a table whose owner's socket closed), after rm.
        try MSBHarness.ok(["stop", open])
        #expect(try !Self.hasFilterTable(open))
        try MSBHarness.ok(["start", open])
        #expect(try Self.hasFilterTable(open))
        let supervisor = try #require(Self.supervisor(of: open))
        kill(supervisor, SIGKILL)
        #expect(try Self.eventually { try !Self.hasFilterTable(open) })
        #expect(try Self.eventually { MSBHarness.processes(matching: "--tcp-ports 127.0.0.1/\(tcpPort):8000").isEmpty })
        try MSBHarness.ok(["rm", "-f", allowed])
        #expect(try !Self.hasFilterTable(allowed))
    }

    @Test func noNetMeansOnlyLoopbackAndNoNetworkProcess() throws {
        let name = MSBHarness.uniqueName("net-none")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name, "--no-net"])
        #expect(try MSBHarness.ok(["exec", name, "--", "ls", "/sys/class/net"]) == "lo\n")
        let supervisor = try #require(Self.supervisor(of: name))
        #expect(Self.children(of: supervisor).allSatisfy { !$0.hasPrefix("passt") }, "\(Self.children(of: supervisor))")
        #expect(try !Self.hasFilterTable(name))
        #expect(try MSBHarness.ok(["port", name]) == "")
    }

    @Test func aSandboxHasItsNetworkBeforeItsFirstCommandAfterARestore() throws {
        let name = MSBHarness.uniqueName("net-first")
        defer { _ = try? MSBHarness.run(["rm", "-f", name]) }
        try MSBHarness.ok(["create", "--name", name])
        #expect(try TemplateTests.boot(name).hasPrefix("template "))
        // Configured by the agent before create returned: address, route, resolver, alias.
        let out = try MSBHarness.ok(["exec", name, "--", "sh", "-c",
                                     "ip -4 -o addr show eth0 | awk '{print $4}'; ip route | grep '^default' | cut -d' ' -f1-3; cat /etc/resolv.conf; grep -c 'host.msb.internal' /etc/hosts"])
        #expect(out == "10.0.2.15/24\ndefault via 10.0.2.2\nnameserver 10.0.2.3\n1\n", "\(out)")

        // passt is the supervisor's child, unprivileged, no_new_privs, and not QEMU's uid.
        let supervisor = try #require(Self.supervisor(of: name))
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        func status(_ pid: Int32) -> [String: String] {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return Dictionary(text.split(separator: "\n").compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }, uniquingKeysWith: { a, _ in a })
        }
        let children = entries.compactMap { Int32($0) }.filter { status($0)["PPid"] == "\(supervisor)" }
        let passt = try #require(children.first { status($0)["Name"]?.hasPrefix("passt") == true }, "no passt under the supervisor")
        let qemu = try #require(children.first { status($0)["Name"]?.hasPrefix("qemu") == true })
        let passtUid = status(passt)["Uid"]?.split(separator: "\t").first.map(String.init)
        #expect(passtUid != nil && passtUid != "0")
        #expect(passtUid != status(qemu)["Uid"]?.split(separator: "\t").first.map(String.init))
        #expect(status(passt)["NoNewPrivs"] == "1")

        // A fork of it gets its own MAC address (and passt) before its first command too.
        let snapshot = MSBHarness.uniqueName("net-snap"), fork = MSBHarness.uniqueName("net-fork")
        defer {
            _ = try? MSBHarness.run(["rm", "-f", fork])
            _ = try? MSBHarness.run(["snapshot", "rm", snapshot])
        }
        let addressCommand = ["--", "sh", "-c", "cat /sys/class/net/eth0/address; ip -4 -o addr show eth0 | awk '{print $4}'"]
        let sourceAddress = try MSBHarness.ok(["exec", name] + addressCommand)
        try MSBHarness.ok(["snapshot", "create", name, snapshot])
        try MSBHarness.ok(["create", "--name", fork, "--from", snapshot])
        let forkAddress = try MSBHarness.ok(["exec", fork] + addressCommand)
        #expect(forkAddress.hasSuffix("\n10.0.2.15/24\n") && sourceAddress.hasSuffix("\n10.0.2.15/24\n"), "\(forkAddress)")
        #expect(forkAddress.split(separator: "\n").first != sourceAddress.split(separator: "\n").first)
        let forkSupervisor = try #require(Self.supervisor(of: fork))
        #expect(Self.children(of: forkSupervisor).contains { $0.hasPrefix("passt") })
        #expect(try Self.hasFilterTable(fork))
    }

    /// passt learns the guest's MAC address from frames: after a restore from a template
    /// QEMU's announcement teaches it, after a cold boot the agent's ARP request. Either way
    /// a published port answers before the guest has sent anything of its own.
    @Test func aPublishedPortAnswersFirstAfterARestoreAndAfterAColdBoot() throws {
        let restored = MSBHarness.uniqueName("net-warm"), cold = MSBHarness.uniqueName("net-cold")
        defer { _ = try? MSBHarness.run(["rm", "-f", restored, cold]) }
        for (name, extra) in [(restored, [String]()), (cold, ["--cold"])] {
            let port = try Self.freePort()
            try MSBHarness.ok(["create", "--name", name, "-p", "\(port):80"] + extra)
            #expect(try TemplateTests.boot(name).hasPrefix(extra.isEmpty ? "template " : "cold"), "\(name)")
            // IPv4 only: no link-local address, no autoconfiguration traffic.
            #expect(try MSBHarness.ok(["exec", name, "--", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"]) == "1\n")
            try MSBHarness.ok(["exec", name, "--", "sh", "-c", "mkdir -p /tmp/www && echo first-\(name) > /tmp/www/f && busybox httpd -p 80 -h /tmp/www"])
            let fetch = "import urllib.request, sys; print(urllib.request.urlopen('http://127.0.0.1:%s/f' % sys.argv[1], timeout=5).read().decode().strip())"
            #expect(try Self.eventually(15) { (try? Self.hostPython(fetch, ["\(port)"])) == "first-\(name)\n" }, "\(name)")
        }
    }

    @Test func remoteClientsPublishOnlyWhatTheServerAllows() throws {
        #expect(ImageTests.built)
        let cliPort = try Self.freePort(), sdkPort = try Self.freePort(), outside = try Self.freePort()
        let server = try TestServer(name: "srvnet-\(getpid() % 10_000)", options: ["--dev", "--allow-port", "\(cliPort)", "--allow-port", "\(sdkPort)"])
        let published = MSBHarness.uniqueName("rnet"), bare = MSBHarness.uniqueName("rnone"), sdk = MSBHarness.uniqueName("rsdk")
        defer {
            for name in [published, bare, sdk] { _ = try? server.msb(["rm", "-f", name], key: nil) }
            server.stop()
        }
        // The CLI through the server: -p and --no-net do what they do locally.
        let created = try server.msb(["create", "--name", published, "-p", "\(cliPort):8000"], key: nil)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try server.msb(["port", published], key: nil).out == "8000/tcp -> 127.0.0.1:\(cliPort)\n")
        #expect(try server.msb(["exec", published, "--", "sh", "-c",
                                "mkdir -p /tmp/www && echo remote > /tmp/www/f && busybox httpd -p 8000 -h /tmp/www"], key: nil).status == 0)
        let fetch = "import urllib.request, sys; print(urllib.request.urlopen('http://127.0.0.1:%s/f' % sys.argv[1], timeout=5).read().decode().strip())"
        #expect(try Self.eventually(15) { (try? Self.hostPython(fetch, ["\(cliPort)"])) == "remote\n" })
        #expect(try server.msb(["create", "--name", bare, "--no-net"], key: nil).status == 0)
        #expect(try server.msb(["exec", bare, "--", "ls", "/sys/class/net"], key: nil).out == "lo\n")

        // An SDK's sandbox.start with ports: refused (403) outside --allow-port, honoured inside.
        let config: [String: Any] = ["image": "python", "memory": 512, "cpus": 1]
        let refused = try server.rpc("sandbox.start", ["sandbox": sdk, "namespace": "default",
                                                        "config": config.merging(["ports": ["\(outside):80"]]) { $1 }], key: nil)
        #expect(refused.status == 403)
        let message = (refused.json["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("port \(outside) is not allowed by this server"), "\(message)")
        #expect(try server.msb(["ls", "-q"], key: nil).out.split(separator: "\n").contains { $0 == sdk } == false)
        let started = try server.rpc("sandbox.start", ["sandbox": sdk, "namespace": "default",
                                                        "config": config.merging(["ports": ["\(sdkPort):80"]]) { $1 }], key: nil)
        #expect(started.status == 200 && started.json["error"] == nil, "\(started.json)")
        #expect(try server.msb(["port", sdk], key: nil).out == "80/tcp -> 127.0.0.1:\(sdkPort)\n")
    }
}
