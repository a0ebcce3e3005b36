import Foundation
import MSBCore
import MSBOS

/// QEMU's `microvm` machine as the VMM (Debian's qemu-system-x86).
package struct QEMUManager: VirtualMachineManager {
    package let name = "qemu"
    package let supportsSavedState = true
    package let binaryPath: String

    package init(binaryPath: String? = nil) {
        self.binaryPath = binaryPath ?? QEMUManager.findBinary() ?? "/usr/bin/qemu-system-x86_64"
    }

    static func findBinary() -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/libexec"] {
            let path = dir + "/qemu-system-x86_64"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    package func makeInstance(_ configuration: VirtualMachineConfiguration) throws(MSBError) -> any VirtualMachineInstance {
        guard access(binaryPath, X_OK) == 0 else {
            throw MSBError(.vmmFailure, "QEMU not found at \(binaryPath)",
                           hint: "install it with 'apt-get install qemu-system-x86' (scripts/setup.sh does)")
        }
        return QEMUInstance(binaryPath: binaryPath, configuration: configuration)
    }
}

/// Kernel command-line items that measurably shorten a boot (see the project's microVM facts).
package enum GuestKernelArguments {
    package static func tuned(accelerator: Accelerator, tscKilohertz: UInt64?) -> [String] {
        var args = [
            "console=ttyS0", "quiet", "panic=-1", "cryptomgr.notests", "noreplace-smp", "mitigations=off",
            "no_timer_check", "tsc=reliable", "init_on_alloc=0", "pci=off", "8250.nr_uarts=1", "rdinit=/init",
        ]
        if accelerator == .tcg, let khz = tscKilohertz { args.append("tsc_early_khz=\(khz)") }
        return args
    }
}

package final class QEMUInstance: VirtualMachineInstance {
    package let configuration: VirtualMachineConfiguration
    package private(set) var process: ProcessIdentity?
    private var child: ChildProcess?
    private let binaryPath: String
    private var reaped: VirtualMachineExit?
    /// The supervisor's ends of the agent and QMP sockets (QEMU holds the others).
    private var agentFd: Int32 = -1
    private var qmpFd: Int32 = -1
    private var qmpClient: QMPClient?
    /// Our end of a NIC connection that leads nowhere (see NetworkAttachment), or -1.
    private var unpluggedNetworkFd: Int32 = -1

    /// QEMU's own seccomp filter: no obsolete system calls, no set*uid, no fork/exec, no
    /// scheduler or resource changes. A guest that takes over QEMU keeps these limits.
    static let seccompPolicy = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

    /// What QEMU finds at its fds 3, 4, ...: it opens nothing by path (see `start`).
    enum Descriptor: Int32, CaseIterable {
        case kernel = 3, initrd, agent, console, qmp, rootDisk, rootDiskBase, guestRAM, savedState, network
    }
    /// Snapshot disk layers follow the fixed descriptors, one each; then the volumes' connections.
    static let firstLayerDescriptor: Int32 = 13

    /// Where QEMU finds volume `index`'s connection.
    func volumeDescriptor(_ index: Int) -> Int32 {
        Self.firstLayerDescriptor + Int32(configuration.rootDiskLayers.count) + Int32(index)
    }

    init(binaryPath: String, configuration: VirtualMachineConfiguration) {
        self.binaryPath = binaryPath
        self.configuration = configuration
    }

    deinit {
        for fd in [agentFd, qmpFd, unpluggedNetworkFd] where fd >= 0 { close(fd) }
    }

    /// The full argument vector. Device order is fixed so snapshots stay restorable.
    package func arguments(tscKilohertz: UInt64?) -> [String] {
        let c = configuration
        let kernelArgs = GuestKernelArguments.tuned(accelerator: c.accelerator, tscKilohertz: tscKilohertz)
            + c.extraKernelArguments + (c.rootDiskPath == nil ? [] : ["msb.root=/dev/vda"])
        func fd(_ descriptor: Descriptor) -> String { "/proc/self/fd/\(descriptor.rawValue)" }
        let restoring = c.memory.isIncoming
        var args = [binaryPath, "-name", "msb-\(c.name)"]
        args += ["-M", "microvm,x-option-roms=off,rtc=on" + (c.memory == .anonymous ? "" : ",memory-backend=mem")]
        switch c.accelerator {
        case .kvm: args += ["-accel", "kvm", "-cpu", "host"]
        case .tcg: args += ["-accel", "tcg,tb-size=\(c.translationCacheMiB)", "-cpu", "qemu64,+rdrand,+arat"]
        }
        args += [
            "-m", "\(c.memoryMiB)", "-smp", "\(c.cpus)",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-sandbox", Self.seccompPolicy,
        ]
        if c.memory == .sharedAnonymous {
            args += ["-object", "memory-backend-memfd,id=mem,size=\(c.memoryMiB)M,share=on"]
        } else if c.memory != .anonymous {
            // QEMU 7.2 opens the RAM file by path (read-write): the path is our descriptor.
            // Restored RAM is a sealed memfd: opening it read-write gives no way to change it.
            args += ["-object", "memory-backend-file,id=mem,size=\(c.memoryMiB)M,mem-path=\(fd(.guestRAM)),share=\(c.memory.isRestore ? "off" : "on")"]
        }
        if restoring {
            // The kernel already runs in the saved RAM: without -kernel QEMU keeps no private
            // copy of it (45 MB per VM); the device state arrives through `migrate-incoming`.
            args += ["-incoming", "defer"]
            // QEMU runs a guest as soon as an incoming migration completes, unless -S. A
            // snapshot's writer must never run it: its disk is a throwaway and its channels
            // lead nowhere, so what the guest did there would be in the saved memory only.
            if case .receive = c.memory { args.append("-S") }
        } else {
            args += ["-kernel", fd(.kernel), "-initrd", fd(.initrd), "-append", kernelArgs.joined(separator: " ")]
        }
        args += [
            "-chardev", "socket,id=console,fd=\(Descriptor.console.rawValue)", "-serial", "chardev:console",
            "-device", "virtio-serial-device,id=vser0",
            "-chardev", "socket,id=agent,fd=\(Descriptor.agent.rawValue)",
            "-device", "virtserialport,bus=vser0.0,chardev=agent,name=agent",
            "-chardev", "socket,id=qmp,fd=\(Descriptor.qmp.rawValue)", "-mon", "chardev=qmp,mode=control",
        ]
        if let network = c.network {
            // passt's end is connected already: QEMU opens nothing and listens on nothing.
            // After a restore QEMU announces the card (RARP frames from the `mac` below,
            // which teach a fresh passt the sandbox's MAC address before the guest has sent
            // anything), but the guest is not asked to announce itself (guest_announce=off):
            // under TCG its gratuitous ARPs cost a start ~30 ms, and it would send them
            // under the template's MAC address, teaching passt the wrong one.
            args += [
                "-netdev", "stream,id=net0,server=off,addr.type=fd,addr.str=\(Descriptor.network.rawValue)",
                "-device", "virtio-net-device,netdev=net0,mac=\(network.macAddress),guest_announce=off",
            ]
        }
        // libvhost-user (virtiofsd) serves only modern (virtio 1.0) devices, and microvm's
        // virtio-mmio is legacy unless told otherwise. Only sandboxes with volumes change it:
        // they boot cold, and every template's device layout stays as it was saved.
        if !c.volumes.isEmpty { args += ["-global", "virtio-mmio.force-legacy=false"] }
        for (index, volume) in c.volumes.enumerated() {
            args += [
                "-chardev", "socket,id=vol\(index),fd=\(volumeDescriptor(index))",
                "-device", "vhost-user-fs-device,chardev=vol\(index),tag=\(volume.tag)",
            ]
        }
        if c.rootDiskPath != nil {
            // Each layer's backing is named here, not taken from its header: QEMU opens no
            // file by path, and the chain is the one the supervisor checked.
            args += [
                "-add-fd", "fd=\(Descriptor.rootDisk.rawValue),set=1",
                "-add-fd", "fd=\(Descriptor.rootDiskBase.rawValue),set=2",
                "-blockdev", "driver=file,node-name=base-file,filename=/dev/fdset/2,read-only=on",
                "-blockdev", "driver=raw,node-name=base,file=base-file,read-only=on",
            ]
            // Snapshot layers, bottom up: layer N's backing is layer N+1, the last one's the image.
            var below = "base"
            for index in c.rootDiskLayers.indices.reversed() {
                let set = 3 + index
                args += [
                    "-add-fd", "fd=\(Self.firstLayerDescriptor + Int32(index)),set=\(set)",
                    "-blockdev", "driver=file,node-name=layer\(index)-file,filename=/dev/fdset/\(set),read-only=on",
                    "-blockdev", "driver=qcow2,node-name=layer\(index),file=layer\(index)-file,backing=\(below),read-only=on",
                ]
                below = "layer\(index)"
            }
            args += [
                "-blockdev", "driver=file,node-name=root-file,filename=/dev/fdset/1,discard=unmap",
                "-blockdev", "driver=qcow2,node-name=root,file=root-file,backing=\(below),discard=unmap",
                "-device", "virtio-blk-device,drive=root",
            ]
        }
        return args
    }

    /// Starts QEMU with every file it needs already open: kernel, initramfs and disks are
    /// opened here and the agent, console and QMP channels are socket pairs, so QEMU needs
    /// no path access at all and can run as an unprivileged uid of its own (`confinement`)
    /// that cannot reach msb's state directory.
    package func start() throws(MSBError) {
        let c = configuration
        let tsc = c.accelerator == .tcg ? AcceleratorProbe.hostTSCKilohertz() : nil
        var opened: [Int32] = []
        defer { for fd in opened { close(fd) } }
        func openFile(_ path: String, _ flags: Int32, _ what: String) throws(MSBError) -> Int32 {
            let fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { throw MSBError(.vmmFailure, "cannot open the \(what): \(String(cString: strerror(errno)))") }
            opened.append(fd)
            return fd
        }
        func socketPair(_ what: String) throws(MSBError) -> (ours: Int32, theirs: Int32) {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw MSBError(.vmmFailure, "cannot create the \(what) channel: \(String(cString: strerror(errno)))")
            }
            opened.append(pair[1])
            return (pair[0], pair[1])
        }
        var descriptors: [Descriptor: Int32] = [:]
        let restoring = c.memory.isIncoming
        switch c.memory {
        case .anonymous, .sharedAnonymous:
            break
        case .sharedFile(let path):
            descriptors[.guestRAM] = try openFile(path, O_RDWR, "guest memory file")
        case .receive(let path, let stream):
            descriptors[.guestRAM] = try openFile(path, O_RDWR, "guest memory file")
            let incoming = fcntl(stream, F_DUPFD_CLOEXEC, 3)
            guard incoming >= 0 else { throw MSBError(.vmmFailure, "cannot pass the migration stream: \(String(cString: strerror(errno)))") }
            opened.append(incoming)
            descriptors[.savedState] = incoming
        case .restore(let memoryDescriptor, let statePath):
            let memory = fcntl(memoryDescriptor, F_DUPFD_CLOEXEC, 3)
            guard memory >= 0 else { throw MSBError(.vmmFailure, "cannot pass the template's memory: \(String(cString: strerror(errno)))") }
            opened.append(memory)
            descriptors[.guestRAM] = memory
            descriptors[.savedState] = try openFile(statePath, O_RDONLY, "template's saved state")
        }
        if !restoring {
            descriptors[.kernel] = try openFile(c.kernelPath, O_RDONLY, "guest kernel")
            descriptors[.initrd] = try openFile(c.initrdPath, O_RDONLY, "guest initramfs")
        }
        if let disk = c.rootDiskPath {
            guard let base = c.rootDiskBasePath else { throw MSBError(.vmmFailure, "the root disk has no image under it") }
            descriptors[.rootDisk] = try openFile(disk, O_RDWR, "sandbox's root disk")
            descriptors[.rootDiskBase] = try openFile(base, O_RDONLY, "image's root disk")
        }
        let agent = try socketPair("agent")
        let console = try socketPair("console")
        let qmp = try socketPair("QMP")
        descriptors[.agent] = agent.theirs
        descriptors[.console] = console.theirs
        descriptors[.qmp] = qmp.theirs
        if let network = c.network {
            if let descriptor = network.descriptor {
                let passed = fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
                guard passed >= 0 else { throw MSBError(.vmmFailure, "cannot pass the network connection: \(String(cString: strerror(errno)))") }
                opened.append(passed)
                descriptors[.network] = passed
            } else {
                // A cable to nowhere: our end stays open while this instance lives, so QEMU
                // never sees the connection close.
                let unplugged = try socketPair("network")
                descriptors[.network] = unplugged.theirs
                unpluggedNetworkFd = unplugged.ours
            }
        }
        agentFd = agent.ours
        qmpFd = qmp.ours
        qmpClient = QMPClient(fd: qmp.ours)
        ConsoleRecorder(fd: console.ours, path: c.consoleLogPath).start()

        let logFd = open(c.vmmLogPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        defer { if logFd >= 0 { close(logFd) } }
        // Own session (no terminal signals), and SIGKILL if the supervisor dies, so no
        // QEMU outlives its owner.
        var spec = SpawnSpec(binaryPath, arguments: arguments(tscKilohertz: tsc), environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        spec.standardOutput = logFd
        spec.standardError = logFd
        var layers: [Int32] = []
        for layer in c.rootDiskLayers { layers.append(try openFile(layer, O_RDONLY, "snapshot's disk layer")) }
        spec.inheritedDescriptors = Descriptor.allCases.map { descriptors[$0] ?? -1 } + layers + c.volumes.map(\.descriptor)
        spec.workingDirectory = "/"
        spec.dieWithParent = true
        spec.noNewPrivileges = true
        if let confinement = c.confinement { spec.credentials = (confinement.uid, confinement.gid) }
        do {
            let child = try ChildProcess.spawn(spec)
            self.child = child
            process = ProcessIdentity.of(pid: child.pid) ?? ProcessIdentity(pid: child.pid, startTicks: 0)
        } catch {
            throw MSBError(.vmmFailure, "cannot start QEMU (\(binaryPath)): \(error.reason)")
        }
    }

    /// The agent channel: the supervisor's end of the socket pair QEMU was given (once).
    package func dialAgent(timeoutSeconds: Double) throws(MSBError) -> Int32 {
        if let exit = pollExit() {
            throw MSBError(.vmmFailure, "QEMU \(exit) before the guest channel opened\(vmmLogTail())")
        }
        guard agentFd >= 0 else { throw MSBError(.vmmFailure, "the guest channel is already taken") }
        defer { agentFd = -1 }
        return agentFd
    }

    package func terminate(graceSeconds: Double) {
        guard let child, pollExit() == nil else { return }
        reaped = VirtualMachineExit(child.terminate(graceSeconds: graceSeconds))
    }

    package func signal(_ signo: Int32) {
        guard let child, reaped == nil else { return }
        child.signal(signo)
    }

    package func pollExit() -> VirtualMachineExit? {
        if let reaped { return reaped }
        guard let status = child?.poll() else { return nil }
        reaped = VirtualMachineExit(status)
        return reaped
    }

    /// Loads the saved state named by `.restore` and runs the guest (`-incoming defer`, so
    /// `x-ignore-shared` is on before the stream is read: the RAM is the mapped file).
    package func resumeFromSavedState() throws(MSBError) {
        try explainingExit { () throws(MSBError) in
            let deadline = MonotonicClock.now() + Self.stateTransferSeconds
            try startIncoming(ignoreShared: true, deadline: deadline)
            try awaitIncoming(run: true, deadline: deadline)
        }
    }

    /// Takes in a guest migrated live from another QEMU (`.receive`): every page arrives in
    /// the stream and lands in the shared RAM file.
    package func beginReceivingMigration() throws(MSBError) {
        try explainingExit { () throws(MSBError) in try startIncoming(ignoreShared: false, deadline: MonotonicClock.now() + 10) }
    }

    package func finishReceivingMigration(timeoutSeconds: Double) throws(MSBError) {
        try explainingExit { () throws(MSBError) in try awaitIncoming(run: false, deadline: MonotonicClock.now() + timeoutSeconds) }
    }

    /// A failed load gets QEMU's own words (a refused stream, a missing file), once it had a moment to exit.
    private func explainingExit(_ body: () throws(MSBError) -> Void) throws(MSBError) {
        do { try body() } catch {
            for _ in 0..<50 where pollExit() == nil { usleep(10_000) }
            throw MSBError(error.code, error.message + vmmLogTail())
        }
    }

    private func startIncoming(ignoreShared: Bool, deadline: Double) throws(MSBError) {
        guard let qmp = qmpClient else { throw MSBError(.vmmFailure, "QEMU is not running") }
        try qmp.execute("migrate-set-capabilities", arguments: ["capabilities": [["capability": "x-ignore-shared", "state": ignoreShared]]],
                        deadline: deadline)
        try qmp.execute("migrate-incoming", arguments: ["uri": "fd:\(Descriptor.savedState.rawValue)"], deadline: deadline)
    }

    /// Waits for the incoming state; after it the VM is paused, and `run` continues it.
    private func awaitIncoming(run: Bool, deadline: Double) throws(MSBError) {
        guard let qmp = qmpClient else { throw MSBError(.vmmFailure, "QEMU is not running") }
        while true {
            if let exit = pollExit() { throw MSBError(.vmmFailure, "QEMU \(exit) while loading the saved state\(vmmLogTail())") }
            let status = try qmp.execute("query-status", deadline: deadline) as? [String: Any]
            switch status?["status"] as? String {
            case "inmigrate":
                usleep(1_000)
            case "running":
                // A writer (`run` false) has -S: a running guest there would be a bug.
                guard run else { throw MSBError(.vmmFailure, "the received guest is running; it must stay paused") }
                return
            case "paused", "postmigrate", "prelaunch":
                if run { try qmp.execute("cont", deadline: deadline) }
                return
            case let other:
                throw MSBError(.vmmFailure, "the saved state did not load (QEMU status \(other ?? "unknown"))\(vmmLogTail())")
            }
        }
    }

    /// Sends the whole guest (RAM included: `x-ignore-shared` off) through `descriptor`,
    /// handed over with `getfd`. QEMU stops the vCPUs and flushes its disks for the final
    /// pass; the guest stays stopped until `continueRunning`.
    package func migrateOut(to descriptor: Int32, timeoutSeconds: Double) throws(MSBError) {
        guard let qmp = qmpClient else { throw MSBError(.vmmFailure, "QEMU is not running") }
        let deadline = MonotonicClock.now() + timeoutSeconds
        try qmp.execute("getfd", arguments: ["fdname": "msb-migration"], passing: descriptor, deadline: deadline)
        try qmp.execute("migrate-set-capabilities", arguments: ["capabilities": [["capability": "x-ignore-shared", "state": false]]],
                        deadline: deadline)
        // QEMU's default cap (128 MiB/s) is for networks; this is a socket pair on one host.
        try qmp.execute("migrate-set-parameters", arguments: ["max-bandwidth": 8 << 30, "downtime-limit": 100], deadline: deadline)
        try qmp.execute("migrate", arguments: ["uri": "fd:msb-migration"], deadline: deadline)
        try waitForMigration(qmp, deadline: deadline, what: "send the VM")
    }

    /// Polls an outgoing migration until it completed (or failed, or the deadline passed:
    /// then it is cancelled, and the guest runs on).
    private func waitForMigration(_ qmp: QMPClient, deadline: Double, what: String) throws(MSBError) {
        while true {
            let info: [String: Any]?
            do { info = try qmp.execute("query-migrate", deadline: deadline) as? [String: Any] } catch {
                _ = try? qmp.execute("migrate_cancel", deadline: MonotonicClock.now() + 5)
                throw error
            }
            switch info?["status"] as? String {
            case "completed":
                return
            case "failed", "cancelled":
                let reason = (info?["error-desc"] as? String).map { ": " + PrintableText.escaped($0, maxScalars: 300) } ?? ""
                throw MSBError(.vmmFailure, "QEMU could not \(what)\(reason)")
            default:
                usleep(2_000)
            }
        }
    }

    /// Stops the vCPUs and writes the device state (not the RAM: it is in the shared file)
    /// through a descriptor handed to QEMU, which opens nothing itself.
    package func saveState(to path: String) throws(MSBError) {
        guard let qmp = qmpClient else { throw MSBError(.vmmFailure, "QEMU is not running") }
        let deadline = MonotonicClock.now() + Self.stateTransferSeconds
        try qmp.execute("stop", deadline: deadline)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw MSBError(.vmmFailure, "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try qmp.execute("getfd", arguments: ["fdname": "msb-state"], passing: fd, deadline: deadline)
        try qmp.execute("migrate-set-capabilities", arguments: ["capabilities": [["capability": "x-ignore-shared", "state": true]]],
                        deadline: deadline)
        try qmp.execute("migrate", arguments: ["uri": "fd:msb-state"], deadline: deadline)
        try waitForMigration(qmp, deadline: deadline, what: "save the VM's state")
        guard fsync(fd) == 0 else { throw MSBError(.vmmFailure, "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    package func pause() throws(MSBError) {
        guard let qmp = qmpClient else { throw MSBError(.vmmFailure, "QEMU is not running") }
        try qmp.execute("stop", deadline: MonotonicClock.now() + 10)
    }

    package func continueRunning() throws(MSBError) {
        guard let qmp = qmpClient else { throw MSBError(.vmmFailure, "QEMU is not running") }
        try qmp.execute("cont", deadline: MonotonicClock.now() + 10)
    }

    /// How long saving or loading a VM's device state may take (it is small: no RAM).
    static let stateTransferSeconds = 30.0

    /// The last lines QEMU printed, to explain a failed start.
    package func vmmLogTail() -> String {
        guard let text = try? String(contentsOfFile: configuration.vmmLogPath, encoding: .utf8) else { return "" }
        let lines = text.split(separator: "\n").suffix(3)
        return lines.isEmpty ? "" : ": " + lines.joined(separator: "; ")
    }
}
