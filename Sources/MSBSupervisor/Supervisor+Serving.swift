import CMSBSys
import Glibc
import MSBCore
import MSBOS
import MSBProtocol
import MSBVMM

/// The serving loop: one poll over the signal pipe, the agent channel, the control socket
/// and every client. Nothing in it blocks: deadlines (max duration, stop, VMM termination,
/// agent silence) are checked each round and bound the poll's timeout.
extension Supervisor {
    /// One round of the poll loop; false once the VM has ended.
    func serveOnce() -> Bool {
        guard let vm, let signals else { return false }
        let clientBacklog = clients.values.contains { $0.peer.pendingOutboundBytes > Self.clientHighWater }
        let agentBacklog = (agent?.pendingOutboundBytes ?? 0) > Self.clientHighWater
        var fds = [
            pollfd(fd: signals.readFd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: listenFd, events: Int16(POLLIN), revents: 0),
        ]
        if let agent {
            let events = (clientBacklog ? 0 : POLLIN) | (agent.pendingOutboundBytes > 0 ? POLLOUT : 0)
            fds.append(pollfd(fd: agent.fd, events: Int16(events), revents: 0))
        }
        let clientList = Array(clients.values)
        let firstClient = fds.count
        // While the guest has not taken what clients already sent (a big stdin), stop reading them.
        for client in clientList {
            let events = (agentBacklog ? 0 : POLLIN) | (client.peer.pendingOutboundBytes > 0 ? POLLOUT : 0)
            fds.append(pollfd(fd: client.peer.fd, events: Int16(events), revents: 0))
        }
        _ = poll(&fds, nfds_t(fds.count), MonotonicClock.milliseconds(until: nextWakeUp()))

        if fds[0].revents != 0 { handleSignals(signals.drain()) }
        if vm.pollExit() != nil { return false }
        checkHelperProcesses()
        if let agent, fds[2].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            if let envelopes = agent.receive() {
                agentHeard()
                for envelope in envelopes { routeFromAgent(envelope) }
            } else {
                agentClosed()
            }
        }
        // Silence is only the agent's when we were reading it.
        if clientBacklog { agentLastHeard = MonotonicClock.now() }
        if fds[1].revents != 0 { acceptClients() }
        for (index, client) in clientList.enumerated() where fds[firstClient + index].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            guard let envelopes = client.peer.receive() else {
                dropClient(client)
                continue
            }
            for envelope in envelopes { handleClient(client, envelope) }
        }
        _ = agent?.flush()
        for client in Array(clients.values) where !client.peer.flush() { dropClient(client) }
        checkDeadlines()
        if let pid = vm.process?.pid { cpuSampler.sample(pid: pid) }
        return vm.pollExit() == nil
    }

    /// passt ending while the VM runs leaves the guest without its network: the sandbox is
    /// ended as crashed, saying so (it ends by itself once QEMU has closed the connection).
    /// So does a volume's virtiofsd: the guest's file system there would hang or fail.
    private func checkHelperProcesses() {
        guard crashReason == nil, stop == nil, channelClosedAt == nil else { return }
        if let status = network?.pollExit() {
            crashReason = "the sandbox's network process (passt) \(status)"
        } else if let server = volumeServers.first(where: { $0.pollExit() != nil }), let status = server.pollExit() {
            crashReason = "the file server of the volume at \(server.guestPath) (virtiofsd) \(status)"
        } else {
            return
        }
        log(crashReason ?? "")
        beginStop(reason: crashReason ?? "", force: true)
    }

    /// The earliest deadline the loop must act on, and at least once a second (CPU sampling).
    private func nextWakeUp() -> Double {
        var times = [MonotonicClock.now() + 1]
        if let stop { times.append(stop.deadline) }
        if let maxDurationDeadline { times.append(maxDurationDeadline) }
        if let idleDeadline { times.append(idleDeadline) }
        if stop == nil, let drainDeadline = drain?.deadline { times.append(drainDeadline) }
        if let channelClosedAt { times.append(channelClosedAt + timing.channelClosedExitSeconds) }
        if let vmmTerminatedAt, !vmmKilled { times.append(vmmTerminatedAt + SupervisorTimeouts.vmmTerminateGraceSeconds) }
        if agent != nil && agentSilence == nil && !paused { times.append(agentLastHeard + timing.agentSilenceSeconds) }
        return times.min() ?? MonotonicClock.now() + 1
    }

    private func handleSignals(_ delivered: [Int32]) {
        for signo in delivered where signo != SIGCHLD {
            beginStop(reason: "stopped: the supervisor received signal \(signo)", force: false)
        }
    }

    private func checkDeadlines() {
        let now = MonotonicClock.now()
        if let deadline = maxDurationDeadline, now >= deadline, stop == nil {
            beginStop(reason: "stopped: maximum duration reached", force: false)
        }
        checkIdle(now: now)
        checkDrain(now: now)
        // A graceful stop that took too long, or a closed channel whose QEMU did not exit: end the VMM.
        let endBy = [stop?.deadline, channelClosedAt.map { $0 + timing.channelClosedExitSeconds }].compactMap { $0 }.min()
        if let endBy, now >= endBy { terminateVMM(now: now) }
        if agent != nil, agentSilence == nil, !paused, now >= agentLastHeard + timing.agentSilenceSeconds {
            agentStoppedAnswering()
        }
    }

    /// SIGTERM, then SIGKILL once the grace has passed; the loop reaps it through SIGCHLD.
    private func terminateVMM(now: Double) {
        guard let vm else { return }
        if let terminatedAt = vmmTerminatedAt {
            if !vmmKilled && now >= terminatedAt + SupervisorTimeouts.vmmTerminateGraceSeconds {
                vm.signal(SIGKILL)
                vmmKilled = true
            }
        } else {
            vm.signal(SIGTERM)
            vmmTerminatedAt = now
        }
    }

    private func agentHeard() {
        agentLastHeard = MonotonicClock.now()
        agentSilence = nil
    }

    /// QEMU closed the channel: it is exiting. It gets a moment to do so on its own.
    private func agentClosed() {
        // A guest that breaks the protocol is cut off like one whose channel closed: its
        // requests fail and the VM is ended after the grace.
        let violation = agent?.protocolViolation
        agent?.close()
        agent = nil
        channelClosedAt = MonotonicClock.now()
        failPendingRequests(violation.map { "the guest agent broke the protocol (\($0))" } ?? "the sandbox's guest channel closed")
    }

    /// The agent sent nothing, not even its heartbeat, for too long: whatever waits on it
    /// is released with the reason, and new requests are refused until it speaks again.
    private func agentStoppedAnswering() {
        agentSilence = "the guest agent stopped answering (no heartbeat for \(secondsText(timing.agentSilenceSeconds))s)"
        failPendingRequests(agentSilence ?? "")
    }

    /// Ends every request in flight: execs and stats with an error, REPL evaluations too
    /// (their interpreters start afresh on the next run).
    func failPendingRequests(_ reason: String) {
        for (globalId, route) in routes {
            guard let client = clients[route.client] else { continue }
            client.requests[route.localId] = nil
            client.peer.send(Envelope(id: route.localId, .execFailed(ExecFailure(kind: .failed, message: reason))))
            agent?.signal(globalId, SIGKILL)
        }
        routes.removeAll()
        statsRequestIds.removeAll()
        detachedExecIds.removeAll()
        for interpreter in Array(interpreters.interpreters.values) {
            agent?.signal(interpreter.execId, SIGKILL)
            endInterpreter(interpreter, reason)
        }
    }

    func beginStop(reason: String, force: Bool, waiter: Int32? = nil) {
        if stop == nil {
            // A paused guest cannot shut down: it runs again for that.
            if paused, (try? vm?.continueRunning()) != nil { paused = false }
            stop = StopRequest(reason: reason, deadline: MonotonicClock.now() + timing.gracefulStopSeconds)
            _ = try? store.update(name) { $0.status = .stopping }
            agent?.shutdown()
        }
        if let waiter { stop?.waiters.append(waiter) }
        if force {
            stop?.reason = reason
            vm?.signal(SIGKILL)
        }
    }
}
