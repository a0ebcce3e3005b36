import CMSBSys
import Foundation
import MSBCore
import MSBOS
import MSBProtocol
import MSBVMM

/// The per-sandbox supervisor: a detached host process that starts the VMM, owns the
/// guest agent's channel (which takes one client at a time), multiplexes any number of
/// CLI clients over its own control socket, reaps the VMM and records how it ended.
package final class Supervisor {
    /// How long the guest gets to answer its first hello under TCG on a loaded host.
    static let bootTimeoutSeconds = 120.0
    /// How long a graceful stop may take before the VMM is terminated.
    static let gracefulStopSeconds = 20.0
    /// Stop reading the agent while a client has this much unread output queued.
    static let clientHighWater = 16 << 20

    private let name: String
    private let paths: MSBPaths
    private let store: StateStore
    private let manager: any VirtualMachineManager
    /// Where readiness is reported to the process that launched us (fd 3), or -1.
    private var readyFd: Int32

    private var vm: (any VirtualMachineInstance)?
    var agent: BufferedPeer?
    private var listenFd: Int32 = -1
    private var signalPipe: [Int32] = [-1, -1]
    var clients: [Int32: SupervisorClient] = [:]
    private var routes: [UInt32: (client: Int32, localId: UInt32)] = [:]
    private var nextRequestId: UInt32 = 1
    private(set) var stop: StopRequest?
    private var maxDurationDeadline: Date?
    private var cpuSampler = CPUSampler()
    let interpreters = InterpreterPool()
    private(set) var defaultEnvironment: [String] = []
    private(set) var defaultWorkingDirectory = ""
    private(set) var defaultUser = ""

    struct StopRequest {
        var reason: String
        var deadline: Date
        var waiters: [Int32] = []
    }

    package init(name: String, paths: MSBPaths, readyFd: Int32, manager: any VirtualMachineManager = QEMUManager()) throws(MSBError) {
        self.name = name
        self.paths = paths
        self.readyFd = readyFd
        self.manager = manager
        self.store = try StateStore(paths: paths)
    }

    /// Boots the sandbox, serves it until the VM ends, records the outcome. Returns the exit code.
    package func run() -> Int32 {
        _ = msb_signal_ignore(SIGPIPE)
        guard msb_pipe(&signalPipe, 1) == 0 else { return fail("cannot create a signal pipe") }
        for signo in [SIGCHLD, SIGTERM, SIGINT, SIGHUP] { _ = msb_signal_to_pipe(signo, signalPipe[1]) }
        do {
            try boot()
        } catch {
            return fail(error.message)
        }
        notifyLauncher("ready")
        while serveOnce() {}
        return finish()
    }

    private func fail(_ message: String) -> Int32 {
        vm?.terminate(graceSeconds: 1)
        _ = try? store.update(name) { record in
            record.status = .crashed
            record.statusReason = message
            record.supervisor = nil
            record.vmm = nil
        }
        notifyLauncher("error: \(message)")
        removeSockets()
        return 1
    }

    private func notifyLauncher(_ line: String) {
        guard readyFd >= 0 else { return }
        _ = try? FileDescriptorIO.writeAll(readyFd, Array((line + "\n").utf8))
        close(readyFd)
        readyFd = -1
    }

    // MARK: Boot

    private func boot() throws(MSBError) {
        guard let record = try store.get(name) else { throw MSBError.sandboxNotFound(name) }
        let config = record.config
        defaultEnvironment = config.environment
        defaultWorkingDirectory = config.workingDirectory
        defaultUser = config.user ?? ""
        let artifacts = try GuestArtifacts(directory: paths.artifacts).validated()
        let decision = try AcceleratorProbe.decide(config.accelerator)
        let vmConfig = VirtualMachineConfiguration(
            name: name, cpus: config.cpus, memoryMiB: config.memoryMiB, accelerator: decision.accelerator,
            kernelPath: artifacts.kernelPath, initrdPath: artifacts.initrdPath,
            extraKernelArguments: ["msb.hostname=\(name)"],
            agentSocketPath: paths.agentSocket(name), qmpSocketPath: paths.qmpSocket(name),
            consoleLogPath: paths.consoleLog(name), vmmLogPath: paths.sandboxDirectory(name) + "/qemu.log",
            rootDiskPath: FileManager.default.fileExists(atPath: paths.rootDisk(name)) ? paths.rootDisk(name) : nil)
        let vm = try manager.makeInstance(vmConfig)
        self.vm = vm
        try vm.start()
        try store.update(name) { $0.vmm = vm.process }
        let agentFd = try vm.dialAgent(timeoutSeconds: 10)
        let agent = BufferedPeer(fd: agentFd)
        self.agent = agent
        try handshake(agent, vm: vm)
        do { listenFd = try UnixSocket.listen(path: paths.controlSocket(name)) } catch {
            throw MSBError(.internalError, error.description)
        }
        _ = msb_set_nonblocking(listenFd, 1)
        if let limit = config.maxDurationMilliseconds {
            maxDurationDeadline = Date().addingTimeInterval(Double(limit) / 1000)
        }
        try store.update(name) { record in
            record.status = .running
            record.statusReason = nil
            record.startedAt = Date()
            record.activeAccelerator = decision.accelerator.rawValue
        }
    }

    /// Bytes sent before the guest opens its port are dropped, so hello is repeated until answered.
    private func handshake(_ agent: BufferedPeer, vm: any VirtualMachineInstance) throws(MSBError) {
        let deadline = Date().addingTimeInterval(Self.bootTimeoutSeconds)
        var lastHello = Date.distantPast
        while true {
            if let exit = vm.pollExit() {
                throw MSBError(.vmmFailure, "the VM \(exit) while booting\(consoleTail())")
            }
            guard Date() < deadline else {
                throw MSBError(.timeout, "the guest agent did not answer within \(Int(Self.bootTimeoutSeconds))s\(consoleTail())")
            }
            if Date().timeIntervalSince(lastHello) > 0.05 {
                agent.send(Envelope(id: 0, .hello(Hello(software: "msb-supervisor"))))
                guard agent.flush() else { throw MSBError(.agentFailure, "the guest channel closed while booting") }
                lastHello = Date()
            }
            var p = pollfd(fd: agent.fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 20)
            guard p.revents != 0 else { continue }
            guard let envelopes = agent.receive() else {
                throw MSBError(.agentFailure, "the guest channel closed while booting\(consoleTail())")
            }
            for envelope in envelopes {
                if case .helloReply(let hello) = envelope.message {
                    guard hello.version == Hello.currentVersion else {
                        throw MSBError(.agentFailure, "guest agent speaks protocol version \(hello.version), expected \(Hello.currentVersion)")
                    }
                    return
                }
            }
        }
    }

    private func consoleTail() -> String {
        guard let text = try? String(contentsOfFile: paths.consoleLog(name), encoding: .utf8) else { return "" }
        let lines = text.split(separator: "\n").suffix(3)
        return lines.isEmpty ? "" : " (console: " + lines.joined(separator: " | ") + ")"
    }

    // MARK: Serving

    /// One round of the poll loop; false once the VM has ended.
    private func serveOnce() -> Bool {
        guard let vm, let agent else { return false }
        let clientBacklog = clients.values.contains { $0.peer.pendingOutboundBytes > Self.clientHighWater }
        var fds = [
            pollfd(fd: signalPipe[0], events: Int16(POLLIN), revents: 0),
            pollfd(fd: agent.fd, events: Int16((clientBacklog ? 0 : POLLIN) | (agent.pendingOutboundBytes > 0 ? POLLOUT : 0)), revents: 0),
            pollfd(fd: listenFd, events: Int16(POLLIN), revents: 0),
        ]
        let clientList = Array(clients.values)
        // While the guest has not taken what clients already sent (a big stdin), stop reading them.
        let agentBacklog = agent.pendingOutboundBytes > Self.clientHighWater
        for client in clientList {
            let events = (agentBacklog ? 0 : POLLIN) | (client.peer.pendingOutboundBytes > 0 ? POLLOUT : 0)
            fds.append(pollfd(fd: client.peer.fd, events: Int16(events), revents: 0))
        }
        _ = poll(&fds, nfds_t(fds.count), pollTimeoutMilliseconds())

        if fds[0].revents != 0 { handleSignals() }
        if vm.pollExit() != nil { return false }
        if fds[1].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            if let envelopes = agent.receive() {
                for envelope in envelopes { routeFromAgent(envelope) }
            } else {
                // QEMU closed the channel: it is exiting. Wait for it to be reaped.
                agentClosed()
            }
        }
        if fds[2].revents != 0 { acceptClients() }
        for (index, client) in clientList.enumerated() {
            let revents = fds[index + 3].revents
            if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                if let envelopes = client.peer.receive() {
                    for envelope in envelopes { handleClient(client, envelope) }
                } else {
                    dropClient(client)
                    continue
                }
            }
        }
        _ = self.agent?.flush()
        for client in Array(clients.values) where !client.peer.flush() { dropClient(client) }
        checkDeadlines()
        if let pid = vm.process?.pid { cpuSampler.sample(pid: pid) }
        return vm.pollExit() == nil
    }

    private func pollTimeoutMilliseconds() -> Int32 {
        var nearest = Date().addingTimeInterval(1)
        if let stop { nearest = min(nearest, stop.deadline) }
        if let maxDurationDeadline { nearest = min(nearest, maxDurationDeadline) }
        return Int32(max(0, nearest.timeIntervalSinceNow * 1000 + 1))
    }

    private func handleSignals() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let n = read(signalPipe[0], &buffer, 64)
            guard n > 0 else { break }
            for signo in buffer[0..<n] where Int32(signo) != SIGCHLD {
                beginStop(reason: "stopped: the supervisor received signal \(signo)", force: false)
            }
        }
    }

    private func checkDeadlines() {
        if let deadline = maxDurationDeadline, Date() >= deadline, stop == nil {
            beginStop(reason: "stopped: maximum duration reached", force: false)
        }
        if let stop, Date() >= stop.deadline {
            vm?.terminate(graceSeconds: 3)
        }
    }

    private func agentClosed() {
        agent?.close()
        agent = nil
        // Give QEMU a moment to exit on its own, then make sure it does.
        let deadline = Date().addingTimeInterval(5)
        while vm?.pollExit() == nil && Date() < deadline { usleep(10_000) }
        vm?.terminate(graceSeconds: 2)
    }

    private func beginStop(reason: String, force: Bool, waiter: Int32? = nil) {
        if stop == nil {
            stop = StopRequest(reason: reason, deadline: Date().addingTimeInterval(Self.gracefulStopSeconds))
            _ = try? store.update(name) { $0.status = .stopping }
            agent?.send(Envelope(id: 0, .shutdown))
        }
        if let waiter { stop?.waiters.append(waiter) }
        if force {
            stop?.reason = reason
            if let pid = vm?.process?.pid { kill(pid, SIGKILL) }
        }
    }

    private func acceptClients() {
        while true {
            let fd = msb_accept(listenFd)
            guard fd >= 0 else { return }
            clients[fd] = SupervisorClient(peer: BufferedPeer(fd: fd))
        }
    }

    private func dropClient(_ client: SupervisorClient) {
        // Its processes can no longer be reported to anyone: end them.
        for globalId in client.requests.values {
            agent?.send(Envelope(id: globalId, .signal(SIGKILL)))
            routes[globalId] = nil
        }
        clients[client.peer.fd] = nil
        stop?.waiters.removeAll { $0 == client.peer.fd }
        client.peer.close()
    }

    private func handleClient(_ client: SupervisorClient, _ envelope: Envelope) {
        let localId = envelope.id
        switch envelope.message {
        case .hello:
            client.peer.send(Envelope(id: localId, .helloReply(Hello(software: "msb-supervisor"))))
        case .exec:
            guard stop == nil else {
                client.peer.send(Envelope(id: localId, .execFailed(ExecFailure(kind: .failed, message: "sandbox is stopping"))))
                return
            }
            guard client.requests[localId] == nil else {
                client.peer.send(Envelope(id: localId, .error("request id \(localId) is already in use")))
                return
            }
            guard case .exec(var request) = envelope.message else { return }
            // Sandbox defaults (create's -e and -w) apply first; the request's own override them.
            request.environment = defaultEnvironment + request.environment
            if request.workingDirectory.isEmpty { request.workingDirectory = defaultWorkingDirectory }
            if request.user.isEmpty { request.user = defaultUser }
            let globalId = allocateRequestId()
            client.requests[localId] = globalId
            routes[globalId] = (client.peer.fd, localId)
            agent?.send(Envelope(id: globalId, .exec(request)))
        case .signal(let signo) where client.requests[localId] == nil:
            // An interrupt for a running REPL evaluation.
            if let interpreter = interpreters.interpreters.values.first(where: {
                $0.current?.client == client.peer.fd && $0.current?.localId == localId
            }) {
                agent?.send(Envelope(id: interpreter.execId, .signal(signo)))
            }
        case .stdin, .stdinClose, .signal, .resize:
            guard let globalId = client.requests[localId] else { return }
            agent?.send(Envelope(id: globalId, envelope.message))
        case .replRun(let language, let code):
            submitREPL(language: language, code: code, client: client, localId: localId)
        case .detach:
            // The process runs on; its output is dropped from now on.
            guard let globalId = client.requests[localId] else { return }
            client.requests[localId] = nil
            routes[globalId] = nil
        case .statsRequest:
            let globalId = allocateRequestId()
            client.requests[localId] = globalId
            routes[globalId] = (client.peer.fd, localId)
            agent?.send(Envelope(id: globalId, .statsRequest))
        case .stopSandbox(let force):
            beginStop(reason: force ? "stopped: killed by user" : "stopped by user", force: force, waiter: client.peer.fd)
        default:
            client.peer.send(Envelope(id: localId, .error("unexpected message")))
        }
    }

    func allocateRequestId() -> UInt32 {
        let id = nextRequestId
        nextRequestId = nextRequestId == UInt32.max - 1 ? 1 : nextRequestId + 1
        return id
    }

    private func routeFromAgent(_ envelope: Envelope) {
        if let interpreter = interpreters.interpreter(forExec: envelope.id) {
            handleInterpreter(interpreter, envelope.message)
            return
        }
        guard let route = routes[envelope.id], let client = clients[route.client] else { return }
        var message = envelope.message
        switch message {
        case .exited, .execFailed, .error:
            routes[envelope.id] = nil
            client.requests[route.localId] = nil
        case .stats(var stats):
            routes[envelope.id] = nil
            client.requests[route.localId] = nil
            stats.cpuPercentMilli = cpuSampler.percentMilli
            message = .stats(stats)
        default:
            break
        }
        client.peer.send(Envelope(id: route.localId, message))
    }

    // MARK: Ending

    private func finish() -> Int32 {
        let exit = vm?.pollExit() ?? VirtualMachineExit(exitCode: nil, signal: nil)
        let (status, reason): (SandboxStatus, String)
        if let stop {
            (status, reason) = (.stopped, stop.reason)
        } else if exit.exitCode == 0 {
            (status, reason) = (.stopped, "stopped: the guest powered off")
        } else {
            (status, reason) = (.crashed, "the VM \(exit)")
        }
        _ = try? store.update(name) { record in
            record.status = status
            record.statusReason = reason
            record.supervisor = nil
            record.vmm = nil
        }
        // Tell every client: waiters learn the stop completed, others see their execs end.
        for client in clients.values {
            for (localId, _) in client.requests {
                client.peer.send(Envelope(id: localId, .execFailed(ExecFailure(kind: .failed, message: "sandbox \(reason)"))))
            }
            if stop?.waiters.contains(client.peer.fd) ?? false {
                client.peer.send(Envelope(id: 0, .stopped(reason)))
            }
            client.peer.flushBlocking(timeoutSeconds: 2)
            client.peer.close()
        }
        removeSockets()
        return status == .stopped ? 0 : 1
    }

    private func removeSockets() {
        if listenFd >= 0 { close(listenFd) }
        for path in [paths.controlSocket(name), paths.agentSocket(name), paths.qmpSocket(name)] { unlink(path) }
    }
}

