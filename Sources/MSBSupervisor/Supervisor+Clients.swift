import CMSBSys
import Glibc
import MSBCore
import MSBOS
import MSBProtocol

/// CLI clients on the control socket: each request id of a client is mapped to an id on
/// the agent channel, so any number of clients share the one channel.
final class SupervisorClient {
    let peer: BufferedPeer
    /// The client's request ids mapped to the ids used on the agent channel.
    var requests: [UInt32: UInt32] = [:]

    init(peer: BufferedPeer) { self.peer = peer }
}

extension Supervisor {
    /// Why requests cannot be served now, if they cannot.
    var unavailableReason: String? {
        if stop != nil { return "sandbox is stopping" }
        if paused { return "sandbox \(name) is paused; resume it with 'msb resume \(name)'" }
        if agent == nil { return "the sandbox's guest channel closed" }
        return agentSilence
    }

    func acceptClients() {
        while true {
            let fd = msb_accept(listenFd)
            guard fd >= 0 else { return }
            clients[fd] = SupervisorClient(peer: BufferedPeer(fd: fd))
        }
    }

    func dropClient(_ client: SupervisorClient) {
        // Its processes can no longer be reported to anyone: end them.
        for globalId in client.requests.values {
            agent?.signal(globalId, SIGKILL)
            routes[globalId] = nil
            statsRequestIds.remove(globalId)
        }
        clients[client.peer.fd] = nil
        stop?.waiters.removeAll { $0 == client.peer.fd }
        client.peer.close()
    }

    func handleClient(_ client: SupervisorClient, _ envelope: Envelope) {
        let localId = envelope.id
        switch envelope.message {
        case .hello:
            client.peer.send(Envelope(id: localId, .helloReply(Hello(software: "msb-supervisor"))))
        case .exec:
            if let reason = unavailableReason ?? drainingRefusal {
                client.peer.send(Envelope(id: localId, .execFailed(ExecFailure(kind: .failed, message: reason))))
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
            agent?.exec(globalId, request)
        case .signal(let signo) where client.requests[localId] == nil:
            // An interrupt for a running REPL evaluation.
            if let interpreter = interpreters.interpreters.values.first(where: {
                $0.current?.client == client.peer.fd && $0.current?.localId == localId
            }) {
                agent?.signal(interpreter.execId, signo)
            }
        case .stdin, .stdinClose, .signal, .resize:
            guard let globalId = client.requests[localId] else { return }
            agent?.relay(globalId, envelope.message)
        case .replRun(let language, let code):
            if let reason = drainingRefusal {
                client.peer.send(Envelope(id: localId, .error(reason)))
                return
            }
            submitREPL(language: language, code: code, client: client, localId: localId)
        case .detach:
            // The process runs on; its output is dropped from now on.
            guard let globalId = client.requests[localId] else { return }
            client.requests[localId] = nil
            routes[globalId] = nil
            detachedExecIds.insert(globalId)
        case .statsRequest, .fileRequest:
            let isFileRequest = if case .fileRequest = envelope.message { true } else { false }
            if let reason = unavailableReason ?? (isFileRequest ? drainingRefusal : nil) {
                client.peer.send(Envelope(id: localId, .error(reason)))
                return
            }
            guard client.requests[localId] == nil else {
                client.peer.send(Envelope(id: localId, .error("request id \(localId) is already in use")))
                return
            }
            let globalId = allocateRequestId()
            client.requests[localId] = globalId
            routes[globalId] = (client.peer.fd, localId)
            if case .fileRequest(let request) = envelope.message {
                // A file operation is the client's work in the sandbox: it counts against idleness.
                agent?.fileRequest(globalId, request)
            } else {
                statsRequestIds.insert(globalId)
                agent?.requestStats(globalId)
            }
        case .drainSandbox(let timeoutMilliseconds):
            client.peer.send(Envelope(id: localId, beginDrain(timeoutMilliseconds: timeoutMilliseconds)))
        case .stopSandbox(let force):
            beginStop(reason: force ? "stopped: killed by user" : "stopped by user", force: force, waiter: client.peer.fd)
        case .setPaused(let pause):
            client.peer.send(Envelope(id: localId, setPaused(pause)))
        case .saveSnapshot(let directory):
            // Blocks the loop for the transfer (about a second): clients wait, nothing is lost.
            client.peer.send(Envelope(id: localId, saveSnapshot(into: directory)))
            agentLastHeard = MonotonicClock.now()
        default:
            client.peer.send(Envelope(id: localId, .error("unexpected message")))
        }
    }

    /// `msb pause` / `msb resume`: the answer is the state now, or why it could not change.
    private func setPaused(_ pause: Bool) -> Message {
        guard let vm, stop == nil, agent != nil else { return .error("sandbox is stopping") }
        guard pause != paused else { return .pausedState(paused) }
        if pause, let reason = drainingRefusal { return .error(reason) }
        do {
            if pause { try vm.pause() } else { try vm.continueRunning() }
        } catch {
            return .error(error.message)
        }
        paused = pause
        // A paused guest sends no heartbeat; its silence counts from the resume.
        if !pause { agentLastHeard = MonotonicClock.now() }
        _ = try? store.update(name) { $0.status = pause ? .paused : .running }
        return .pausedState(paused)
    }

    func allocateRequestId() -> UInt32 {
        let id = nextRequestId
        nextRequestId = nextRequestId == UInt32.max - 1 ? 1 : nextRequestId + 1
        return id
    }

    func routeFromAgent(_ envelope: Envelope) {
        if handleStartCommandMessage(envelope) { return }
        if let interpreter = interpreters.interpreter(forExec: envelope.id) {
            handleInterpreter(interpreter, envelope.message)
            return
        }
        guard let route = routes[envelope.id], let client = clients[route.client] else {
            switch envelope.message {
            case .exited, .execFailed, .error: detachedExecIds.remove(envelope.id)
            default: break
            }
            return
        }
        var message = envelope.message
        switch message {
        case .exited, .execFailed, .error, .fileReply:
            routes[envelope.id] = nil
            statsRequestIds.remove(envelope.id)
            client.requests[route.localId] = nil
        case .stats(var stats):
            routes[envelope.id] = nil
            statsRequestIds.remove(envelope.id)
            client.requests[route.localId] = nil
            stats.cpuPercentMilli = cpuSampler.percentMilli
            message = .stats(stats)
        default:
            break
        }
        client.peer.send(Envelope(id: route.localId, message))
    }
}
