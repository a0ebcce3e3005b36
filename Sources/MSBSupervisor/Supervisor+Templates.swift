import Foundation
import MSBCore
import MSBNetwork
import MSBOS
import MSBProtocol
import MSBVMM

/// How the sandbox's VM came up.
struct VirtualMachineStart: CustomStringConvertible {
    var agent: AgentChannel
    var restored: Bool
    /// For a restore: the template's key or the snapshot's name; for a cold boot: why there was no restore.
    var detail: String
    /// What was restored: "template" or "snapshot".
    var kind = "template"
    var description: String { restored ? "\(kind) \(detail)" : "cold boot: \(detail)" }
}

extension Supervisor {
    /// Why a sandbox with volumes boots its kernel (said in its `boot` line).
    static let volumesBootCold = "it has volumes (QEMU 7.2 cannot save or restore a virtio-fs device)"
    /// How long a restored guest gets to answer hello before the restore counts as failed.
    static let restoreAnswerSeconds = 20.0
    /// How long a start waits for another process that is building the same template.
    static let templateLockSeconds = 180.0

    /// Starts the sandbox's VM from its template (building the template first if there is
    /// none), or by a cold boot when asked to or when the template route fails; the reason
    /// is kept for `inspect` and the CLI says it once.
    func startVirtualMachine(_ base: VirtualMachineConfiguration, coldBootRequested: Bool, snapshot: String?) throws(MSBError) -> VirtualMachineStart {
        if let snapshot { return try restoreFromSnapshot(base, snapshot: snapshot) }
        var reason = coldBootRequested ? "requested with --cold" : "the VMM (\(manager.name)) cannot resume saved guests"
        if !base.volumes.isEmpty {
            reason = Self.volumesBootCold
        } else if !coldBootRequested, manager.supportsSavedState {
            do {
                return try restoreFromTemplate(base)
            } catch {
                reason = error.message
                log("starting by a cold boot: \(reason)")
            }
        }
        let vm = try manager.makeInstance(base)
        self.vm = vm
        try vm.start()
        try store.update(name) { $0.vmm = vm.process }
        let agent = AgentChannel(fd: try vm.dialAgent(timeoutSeconds: 10))
        try handshake(agent, vm: vm)
        return VirtualMachineStart(agent: agent, restored: false, detail: reason)
    }

    /// The template route: find or build the template for these inputs, then resume it with
    /// this sandbox's own disk, identity and confinement.
    private func restoreFromTemplate(_ base: VirtualMachineConfiguration) throws(MSBError) -> VirtualMachineStart {
        let inputs = try templateInputs(base)
        let templates = TemplateStore(directory: paths.templates)
        let template: Template
        if let existing = templates.lookup(inputs) {
            template = existing
        } else {
            template = try templates.withBuildLock(key: inputs.key, timeoutSeconds: Self.templateLockSeconds) { () throws(MSBError) -> Template in
                if let built = templates.lookup(inputs) { return built }
                templates.removeLeftovers()
                return try buildTemplate(base, inputs: inputs, in: templates)
            }
        }
        do {
            return try resume(template, from: templates, base: base)
        } catch {
            // A template that does not restore is dropped: the next start builds a new one.
            templates.remove(key: template.key)
            throw MSBError(error.code, "the template \(template.key) could not be restored (\(error.message)); it was removed")
        }
    }

    /// Resumes a saved guest (a template or a snapshot) with this sandbox's own disk,
    /// identity and confinement, and waits for its agent.
    func resume(_ template: Template, from templates: TemplateStore, base: VirtualMachineConfiguration) throws(MSBError) -> VirtualMachineStart {
        var config = base
        do {
            // The sealed memory, shared by every sandbox of this template; the connection
            // keeps its keeper alive while this supervisor runs (closed when it exits).
            let held = try TemplateKeeper.memory(of: template, store: templates, paths: paths)
            templateKeeperConnection = held.connection
            defer { close(held.memory) }
            config.memory = .restore(memoryDescriptor: held.memory, statePath: template.statePath)
            let began = MonotonicClock.now()
            let vm = try manager.makeInstance(config)
            self.vm = vm
            try vm.start()
            try store.update(name) { $0.vmm = vm.process }
            let spawned = MonotonicClock.now()
            try vm.resumeFromSavedState()
            let resumed = MonotonicClock.now()
            let agent = AgentChannel(fd: try vm.dialAgent(timeoutSeconds: 10))
            try handshake(agent, vm: vm, timeoutSeconds: Self.restoreAnswerSeconds)
            let ms = Self.milliseconds
            log("restored: QEMU started \(ms(began, spawned)) ms, state loaded \(ms(spawned, resumed)) ms, "
                + "agent answered \(ms(resumed, MonotonicClock.now())) ms")
            return VirtualMachineStart(agent: agent, restored: true, detail: template.key)
        } catch {
            vm?.terminate(graceSeconds: 1)
            vm = nil
            if templateKeeperConnection >= 0 { close(templateKeeperConnection) }
            templateKeeperConnection = -1
            throw error
        }
    }

    /// What the template for `base` depends on.
    func templateInputs(_ base: VirtualMachineConfiguration) throws(MSBError) -> TemplateInputs {
        guard let kernel = FileIdentity(path: base.kernelPath), let initramfs = FileIdentity(path: base.initrdPath),
              let qemu = FileIdentity(path: QEMUManager().binaryPath) else {
            throw MSBError(.notFound, "the guest kernel, initramfs or QEMU is missing")
        }
        var diskBytes: Int64?
        if let disk = base.rootDiskBasePath {
            guard let identity = FileIdentity(path: disk) else { throw MSBError(.notFound, "the image's root disk is missing") }
            diskBytes = identity.sizeBytes
        }
        return TemplateInputs(accelerator: base.accelerator, cpus: base.cpus, memoryMiB: base.memoryMiB, rootDiskBytes: diskBytes,
                              kernel: kernel, initramfs: initramfs, qemu: qemu, network: base.network != nil)
    }

    /// Boots a guest whose RAM is a shared file, waits for its agent, and saves it. The
    /// guest gets a throwaway disk of the right size that it never mounts: a template
    /// holds no sandbox's files.
    private func buildTemplate(_ base: VirtualMachineConfiguration, inputs: TemplateInputs,
                               in templates: TemplateStore) throws(MSBError) -> Template {
        log("building the start template \(inputs.key)")
        let work = try templates.makeWorkDirectory()
        var finished = false
        defer { if !finished { try? FileManager.default.removeItem(atPath: work) } }
        let confinement = VMMConfinement.forTemplate(key: inputs.key, accelerator: base.accelerator)
        let ramPath = try Self.createRAMFile(in: work, memoryMiB: base.memoryMiB, owner: confinement)
        var config = base
        config.name = "template-" + inputs.key
        config.memory = .sharedFile(path: ramPath)
        config.consoleLogPath = work + "/console.log"
        config.vmmLogPath = work + "/qemu.log"
        config.confinement = confinement
        // The card without the sandbox's network: the template's guest never uses it.
        config.network = base.network.map { _ in NetworkAttachment(descriptor: nil, macAddress: SandboxNetwork.macText(GuestNetwork.templateMACAddress)) }
        if let disk = base.rootDiskBasePath {
            config.rootDiskPath = work + "/disk.qcow2"
            try RootDisk.createOverlay(base: disk, at: work + "/disk.qcow2")
        }
        let vm = try manager.makeInstance(config)
        defer { vm.terminate(graceSeconds: 1) }
        try vm.start()
        let agent = AgentChannel(fd: try vm.dialAgent(timeoutSeconds: 10))
        defer { agent.close() }
        try handshake(agent, vm: vm, consoleLogPath: config.consoleLogPath)
        // With a card, the guest's interface is configured here once (address, route,
        // MTU, the initramfs's /etc files): a sandbox restored from the template then only
        // sets its own MAC address (see GuestNetworkSetup.apply).
        if config.network != nil {
            try setUpGuest(agent, restored: false, rootDevice: "", network: Self.guestNetwork(macAddress: GuestNetwork.templateMACAddress))
        }
        warmUp(agent)
        try vm.saveState(to: work + "/state.bin")
        vm.terminate(graceSeconds: 1)
        Self.finishSavedGuest(in: work, ramPath: ramPath, leftovers: ["disk.qcow2"])
        let template = try templates.install(work, inputs: inputs)
        finished = true
        return template
    }

    /// Runs a few commands in the template's guest before it is saved, so that what a first
    /// exec sets up once (the agent's runtime state for spawning, the kernel's caches for
    /// fork and exec) is already in the memory every sandbox resumes. Best effort.
    private func warmUp(_ agent: AgentChannel) {
        let began = MonotonicClock.now()
        for id in UInt32(1)...3 {
            agent.exec(id, ExecRequest(argv: ["/bin/sh", "-c", "true"], workingDirectory: "/"))
            let ended = try? awaitAgent(agent, timeoutSeconds: began + 20 - MonotonicClock.now(), during: "its warm-up") { envelope in
                switch envelope.message {
                case .exited, .execFailed: envelope.id == id
                default: false
                }
            }
            guard ended != nil else { return }
        }
        log("template warmed up in \(Self.milliseconds(began, MonotonicClock.now())) ms")
    }

    /// Sends what the agent has queued and reads it until an envelope `matches` (returned),
    /// the channel closes or `timeoutSeconds` pass (thrown, naming `what`).
    private func awaitAgent(_ agent: AgentChannel, timeoutSeconds: Double, during what: String,
                            matches: (Envelope) -> Bool) throws(MSBError) -> Envelope {
        let deadline = MonotonicClock.now() + timeoutSeconds
        while true {
            guard agent.flush() else { throw MSBError(.agentFailure, "the guest channel closed during \(what)") }
            guard MonotonicClock.now() < deadline else {
                throw MSBError(.timeout, "the guest agent did not finish \(what) within \(Int(timeoutSeconds))s")
            }
            var entry = pollfd(fd: agent.fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, 20)
            guard entry.revents != 0 else { continue }
            guard let envelopes = agent.receive() else {
                throw MSBError(.agentFailure, "the guest channel closed during \(what)\(agent.protocolViolation.map { ": \($0)" } ?? "")")
            }
            if let matched = envelopes.first(where: matches) { return matched }
        }
    }

    /// Sends the guest its identity for this start and waits until it was applied.
    /// `hostname` nil: the sandbox's name.
    func setUpGuest(_ agent: AgentChannel, restored: Bool, rootDevice: String, network: GuestNetwork?,
                    volumes: [GuestVolume] = [], hostname: String? = nil) throws(MSBError) {
        // The system generator is the kernel's getrandom(2).
        var generator = SystemRandomNumberGenerator()
        let entropy = (0..<8).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64, Array.init) }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nanoseconds = UInt64(clamping: now.tv_sec) &* 1_000_000_000 &+ UInt64(clamping: now.tv_nsec)
        agent.setup(GuestSetup(hostname: hostname ?? name, wallClockNanoseconds: nanoseconds, entropy: entropy, rootDevice: rootDevice, restored: restored,
                               network: network, volumes: volumes))
        let done = try awaitAgent(agent, timeoutSeconds: 30, during: "its setup") { envelope in
            if case .setupDone = envelope.message { true } else { false }
        }
        if case .setupDone(let problem) = done.message, !problem.isEmpty {
            throw MSBError(.agentFailure, "the guest could not be set up: \(PrintableText.escaped(problem, maxScalars: 500))")
        }
    }

    /// A guest RAM file of `memoryMiB` in `directory` (a template's or snapshot's work
    /// directory), owned by the QEMU that fills it through a shared mapping (`owner`).
    static func createRAMFile(in directory: String, memoryMiB: Int, owner: VMMConfinement?) throws(MSBError) -> String {
        let path = directory + "/memory.ram"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(memoryMiB) << 20) == 0 else {
            throw MSBError(.stateStore, "cannot create the guest memory file: \(String(cString: strerror(errno)))")
        }
        fchmod(fd, 0o600)  // past the umask
        if let owner { _ = fchown(fd, uid_t(bitPattern: owner.uid), gid_t(bitPattern: owner.gid)) }
        close(fd)
        return path
    }

    /// Once a saved guest's state is written: its QEMU's logs and `leftovers` go, and the RAM
    /// file becomes root's, 0600. Only its keeper reads it from now on (into a sealed memfd).
    static func finishSavedGuest(in directory: String, ramPath: String, leftovers: [String]) {
        for leftover in leftovers + ["console.log", "qemu.log"] { unlink(directory + "/" + leftover) }
        if geteuid() == 0 { _ = chown(ramPath, 0, 0) }
        chmod(ramPath, 0o600)
    }

    /// Whole milliseconds between two monotonic readings, for the start timing lines.
    static func milliseconds(_ from: Double, _ to: Double) -> Int { Int(clamping: Int(((to - from) * 1000).rounded())) }

    func log(_ text: String) {
        FileHandle.standardError.write(Data("msb-supervisor: \(text)\n".utf8))
    }
}
