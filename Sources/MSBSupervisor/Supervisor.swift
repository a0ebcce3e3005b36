import CMSBSys
import Foundation
import MSBCore
import MSBNetwork
import MSBVolumes
import MSBOS
import MSBProtocol
import MSBVMM

/// The per-sandbox supervisor: a detached host process that starts the VMM, owns the
/// guest agent's channel (which takes one client at a time), multiplexes any number of
/// CLI clients over its own control socket, reaps the VMM and records how it ended.
package final class Supervisor {
    /// Stop reading the agent while a client has this much unread output queued.
    static let clientHighWater = 16 << 20
    /// The supervisor's time limits; tests shorten them.
    package struct Timing: Sendable {
        /// How long the guest agent may stay silent before it is taken as not answering
        /// (it sends a heartbeat every `Heartbeat.intervalSeconds`).
        package var agentSilenceSeconds: Double
        /// How long a graceful stop may take before the VMM is terminated.
        package var gracefulStopSeconds: Double
        /// After the agent channel closed, how long the VMM gets to exit on its own.
        package var channelClosedExitSeconds: Double

        package init(agentSilenceSeconds: Double, gracefulStopSeconds: Double, channelClosedExitSeconds: Double) {
            self.agentSilenceSeconds = agentSilenceSeconds
            self.gracefulStopSeconds = gracefulStopSeconds
            self.channelClosedExitSeconds = channelClosedExitSeconds
        }

        package static let standard = Timing(agentSilenceSeconds: Heartbeat.timeoutSeconds,
                                             gracefulStopSeconds: SupervisorTimeouts.gracefulStopSeconds, channelClosedExitSeconds: 5)
    }

    let name: String
    let paths: MSBPaths
    let store: StateStore
    let manager: any VirtualMachineManager
    let timing: Timing
    /// Where readiness is reported to the process that launched us (fd 3), or -1.
    private var readyFd: Int32

    var vm: (any VirtualMachineInstance)?
    var agent: AgentChannel?
    /// The sandbox's network (passt and its filter), when it has one.
    var network: SandboxNetwork?
    /// One virtiofsd per volume, in the order of `SandboxConfig.volumes`.
    var volumeServers: [VolumeServer] = []
    /// The network while its filter is installed beside QEMU's start (`joinNetwork`).
    private var pendingNetwork: SandboxNetwork.PendingStart?
    /// Why the sandbox crashed although the VM itself did not fail (its network process died).
    var crashReason: String?
    var listenFd: Int32 = -1
    var signals: SignalPipe?
    var clients: [Int32: SupervisorClient] = [:]
    var routes: [UInt32: (client: Int32, localId: UInt32)] = [:]
    var nextRequestId: UInt32 = 1
    var stop: StopRequest?
    /// `msb drain` in progress (Supervisor+Drain).
    var drain: DrainRequest?
    /// Agent-channel ids of execs whose client detached: they still run, and a drain waits for them.
    var detachedExecIds: Set<UInt32> = []
    var maxDurationDeadline: Double?
    /// `--idle-timeout` in seconds, and when a client was last served (see Supervisor+Idle).
    var idleTimeoutSeconds: Double?
    var lastClientActivity = 0.0
    var servedClientsLastRound = false
    /// Agent-channel ids of the stats requests in flight: they are not client activity.
    var statsRequestIds: Set<UInt32> = []
    var cpuSampler = CPUSampler()
    let interpreters = InterpreterPool()
    /// The start command running in the background, and the file requests that write the
    /// scripts into the guest (see Supervisor+StartCommand).
    var startCommand: (execId: UInt32, log: BoundedLogFile)?
    var scriptRequestIds: Set<UInt32> = []
    private(set) var defaultEnvironment: [String] = []
    private(set) var defaultWorkingDirectory = ""
    private(set) var defaultUser = ""
    /// Our connection to the keeper of the template the VM was restored from (-1 if none):
    /// open while we run, so the keeper stays.
    var templateKeeperConnection: Int32 = -1
    /// Whether the vCPUs are stopped (`msb pause`): the agent cannot answer, by design.
    var paused = false
    /// When the agent last sent anything (monotonic seconds).
    var agentLastHeard = 0.0
    /// Why the agent is taken as not answering, while it is.
    var agentSilence: String?
    /// When the agent channel closed (QEMU is exiting), if it did.
    var channelClosedAt: Double?
    /// When the VMM was sent SIGTERM, and whether SIGKILL followed.
    var vmmTerminatedAt: Double?
    var vmmKilled = false

    struct StopRequest {
        var reason: String
        /// Monotonic seconds.
        var deadline: Double
        var waiters: [Int32] = []
    }

    package init(name: String, paths: MSBPaths, readyFd: Int32, manager: any VirtualMachineManager = QEMUManager(),
                 timing: Timing = .standard) throws(MSBError) {
        self.name = name
        self.paths = paths
        self.readyFd = readyFd
        self.manager = manager
        self.timing = timing
        self.store = try StateStore(paths: paths)
    }

    /// Boots the sandbox, serves it until the VM ends, records the outcome. Returns the exit code.
    package func run() -> Int32 {
        _ = msb_signal_ignore(SIGPIPE)
        do { signals = try SignalPipe([SIGCHLD, SIGTERM, SIGINT, SIGHUP]) } catch { return fail(error.description) }
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
        network?.terminate(graceSeconds: 1)
        for server in volumeServers { server.terminate(graceSeconds: 1) }
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
        let bootStarted = MonotonicClock.now()
        guard let record = try store.get(name) else { throw MSBError.sandboxNotFound(name) }
        let config = record.config
        defaultEnvironment = config.environment
        defaultWorkingDirectory = config.workingDirectory
        defaultUser = config.user ?? ""
        let artifacts = try GuestArtifacts(directory: paths.artifacts).validated()
        let disk = try Self.verifiedRootDisk(config, name: name, paths: paths)
        let rootDisk = disk?.overlay
        let decision = try AcceleratorProbe.decide(config.accelerator)
        var vmConfig = VirtualMachineConfiguration(
            name: name, cpus: config.cpus, memoryMiB: config.memoryMiB, accelerator: decision.accelerator,
            kernelPath: artifacts.kernelPath, initrdPath: artifacts.initrdPath, extraKernelArguments: [],
            consoleLogPath: paths.consoleLog(name), vmmLogPath: paths.sandboxDirectory(name) + "/qemu.log",
            rootDiskPath: rootDisk, rootDiskBasePath: disk?.image,
            confinement: VMMConfinement.forSandbox(directory: paths.sandboxDirectory(name), accelerator: decision.accelerator))
        vmConfig.rootDiskLayers = disk?.layers ?? []
        if let text = ProcessInfo.processInfo.environment["MSB_TCG_CACHE_MIB"], let mib = Int(text), (1...4096).contains(mib) {
            vmConfig.translationCacheMiB = mib
        }
        var guestNetwork: GuestNetwork?
        if let policy = config.network {
            let directory = paths.sandboxDirectory(name)
            let identity = VMMConfinement.forNetwork(directory: directory)
            var launch = SandboxNetwork.Launch(
                policy: policy, identity: identity.map { ($0.uid, $0.gid) },
                tableName: SandboxNetwork.tableName(forSandboxDirectory: directory), logPath: directory + "/passt.log")
            launch.tableComment = "msb sandbox \(name)"
            let pending = try SandboxNetwork.begin(launch)
            pendingNetwork = pending
            let mac = SandboxNetwork.macAddress(forSandboxDirectory: directory)
            vmConfig.network = NetworkAttachment(descriptor: pending.vmmDescriptor, macAddress: SandboxNetwork.macText(mac))
            guestNetwork = Self.guestNetwork(macAddress: mac)
        }
        let guestVolumes = try startVolumes(config.volumes ?? [], into: &vmConfig)
        let prepared = MonotonicClock.now()
        // A fork resumes its snapshot on its first start only: later its disk has moved on
        // from the snapshot's memory, and it starts like any sandbox.
        let started: VirtualMachineStart
        do {
            started = try startVirtualMachine(vmConfig, coldBootRequested: config.coldBoot == true,
                                              snapshot: record.startedAt == nil ? config.snapshot : nil)
        } catch {
            try? joinNetwork()  // so that `fail` reaps passt too
            throw error
        }
        try joinNetwork()
        let answered = MonotonicClock.now()
        network?.releaseVMMEnd()
        for server in volumeServers { server.releaseVMMEnd() }
        let agent = started.agent
        self.agent = agent
        try setUpGuest(agent, restored: started.restored, rootDevice: rootDisk == nil ? "" : "/dev/vda", network: guestNetwork,
                       volumes: guestVolumes, hostname: config.hostname)
        let setUp = MonotonicClock.now()
        let ms = Self.milliseconds
        // Where a start's time went, for anyone chasing start latency (bench/templates.py).
        log("started in \(ms(bootStarted, setUp)) ms: checks \(ms(bootStarted, prepared)) ms, VM to agent \(ms(prepared, answered)) ms, "
            + "setup \(ms(answered, setUp)) ms (\(started))")
        do { listenFd = try UnixSocket.listen(path: paths.controlSocket(name)) } catch {
            throw MSBError(.internalError, error.description)
        }
        _ = msb_set_nonblocking(listenFd, 1)
        if let limit = config.maxDurationMilliseconds {
            maxDurationDeadline = MonotonicClock.now() + Double(limit) / 1000
        }
        if let idle = config.idleTimeoutMilliseconds {
            idleTimeoutSeconds = Double(idle) / 1000
            lastClientActivity = MonotonicClock.now()
        }
        agentLastHeard = MonotonicClock.now()
        startGuestCommands(config)
        try store.update(name) { record in
            record.status = .running
            record.statusReason = nil
            record.startedAt = Date()
            record.activeAccelerator = decision.accelerator.rawValue
            record.boot = started.description
        }
    }

    /// The network `begin` started beside QEMU, once: its filter installed, passt running.
    private func joinNetwork() throws(MSBError) {
        guard let pending = pendingNetwork else { return }
        pendingNetwork = nil
        network = try pending.wait()
    }

    /// The guest's interface: the fixed addressing every sandbox network has, its own MAC.
    static func guestNetwork(macAddress: [UInt8]) -> GuestNetwork {
        func bytes(_ address: String) -> [UInt8] { IPAddress.bytes(of: address) ?? [] }
        return GuestNetwork(
            interface: GuestAddressing.interface, macAddress: macAddress, address: bytes(GuestAddressing.address),
            prefixLength: UInt8(GuestAddressing.prefixLength), gateway: bytes(GuestAddressing.gateway),
            nameserver: bytes(GuestAddressing.nameserver), mtu: UInt32(GuestAddressing.mtu),
            hostsEntries: ["\(GuestAddressing.gateway) \(GuestAddressing.hostAlias)"])
    }

    /// Bytes sent before the guest opens its port are dropped, so hello is repeated until answered.
    func handshake(_ agent: AgentChannel, vm: any VirtualMachineInstance, timeoutSeconds: Double = SupervisorTimeouts.bootSeconds,
                   consoleLogPath: String? = nil) throws(MSBError) {
        let consoleTail = { self.consoleTail(consoleLogPath ?? self.paths.consoleLog(self.name)) }
        let deadline = MonotonicClock.now() + timeoutSeconds
        var lastHello = 0.0
        while true {
            if let exit = vm.pollExit() {
                throw MSBError(.vmmFailure, "the VM \(exit) while booting\(consoleTail())")
            }
            guard MonotonicClock.now() < deadline else {
                throw MSBError(.timeout, "the guest agent did not answer within \(Int(timeoutSeconds))s\(consoleTail())")
            }
            if MonotonicClock.now() - lastHello > 0.05 {
                agent.hello()
                guard agent.flush() else { throw MSBError(.agentFailure, "the guest channel closed while booting") }
                lastHello = MonotonicClock.now()
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

    func consoleTail(_ path: String) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "" }
        let lines = text.split(separator: "\n").suffix(3)
        return lines.isEmpty ? "" : " (console: " + lines.joined(separator: " | ") + ")"
    }

    // MARK: Ending

    private func finish() -> Int32 {
        let exit = vm?.pollExit() ?? VirtualMachineExit(exitCode: nil, signal: nil)
        startCommand?.log.note("exec ended: the sandbox stopped")
        startCommand = nil
        network?.terminate(graceSeconds: 1)
        for server in volumeServers { server.terminate(graceSeconds: 1) }
        let (status, reason): (SandboxStatus, String)
        if let crashReason {
            (status, reason) = (.crashed, crashReason)
        } else if let stop {
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
        unlink(paths.controlSocket(name))
    }
}


/// A sandbox's root disk as QEMU gets it: its overlay, the snapshot layers below it (a
/// fork's), and the image at the bottom.
struct VerifiedRootDisk {
    var overlay: String
    var layers: [String]
    var image: String?
}

extension Supervisor {
    /// The sandbox's overlay, when its image has a disk: it must exist (a create killed
    /// before it was made must not boot the built-in image instead) and lie on the stored
    /// image the sandbox was made from (through the disks of its snapshots, for a fork),
    /// each layer naming exactly the one below; QEMU's headers are not trusted further.
    static func verifiedRootDisk(_ config: SandboxConfig, name: String, paths: MSBPaths) throws(MSBError) -> VerifiedRootDisk? {
        let overlay = paths.rootDisk(name)
        let hasOverlay = access(overlay, F_OK) == 0
        guard config.image != "base" || config.imageDigest != nil else {
            return hasOverlay ? VerifiedRootDisk(overlay: overlay, layers: [], image: QCOW2.backingFile(of: overlay)) : nil
        }
        guard hasOverlay else {
            throw MSBError(.invalidState, "the root disk of sandbox \(name) is missing (its create did not finish)",
                           hint: "remove it with 'msb rm \(name)' and create it again")
        }
        // Made before images were content-addressed: its overlay names the image by tag.
        guard let recorded = config.imageDigest else {
            return VerifiedRootDisk(overlay: overlay, layers: [], image: QCOW2.backingFile(of: overlay))
        }
        guard let digest = ContentDigest(recorded) else {
            throw MSBError(.integrity, "sandbox \(name) records an invalid image digest")
        }
        let expected = paths.storedImageRootDisk(digestHex: digest.hex)
        var layers: [String] = []
        if let snapshot = config.snapshot {
            do { layers = try SnapshotStore(directory: paths.snapshots).diskLayers(snapshot) } catch {
                throw MSBError(.notFound, "the snapshot sandbox \(name) was made from is gone or damaged (\(error.message))",
                               hint: "remove it with 'msb rm \(name)'")
            }
        }
        let chain = [overlay] + layers + [expected]
        for (upper, lower) in zip(chain, chain.dropFirst()) where QCOW2.backingFile(of: upper) != lower {
            throw MSBError(.integrity, "the root disk of sandbox \(name) does not refer to its image \(digest.description.prefix(19))",
                           hint: "remove it with 'msb rm \(name)' and create it again")
        }
        guard access(expected, R_OK) == 0 else {
            throw MSBError(.notFound, "the image sandbox \(name) was made from (\(digest.description.prefix(19))) is gone",
                           hint: "remove it with 'msb rm \(name)'")
        }
        return VerifiedRootDisk(overlay: overlay, layers: layers, image: expected)
    }
}
