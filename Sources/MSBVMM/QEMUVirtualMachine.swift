import Foundation
import MSBCore
import MSBOS

/// QEMU's `microvm` machine as the VMM (Debian's qemu-system-x86).
package struct QEMUManager: VirtualMachineManager {
    package let name = "qemu"
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

    init(binaryPath: String, configuration: VirtualMachineConfiguration) {
        self.binaryPath = binaryPath
        self.configuration = configuration
    }

    /// The full argument vector. Device order is fixed so snapshots stay restorable.
    package func arguments(tscKilohertz: UInt64?) -> [String] {
        let c = configuration
        let kernelArgs = GuestKernelArguments.tuned(accelerator: c.accelerator, tscKilohertz: tscKilohertz)
            + c.extraKernelArguments + (c.rootDiskPath == nil ? [] : ["msb.root=/dev/vda"])
        var args = [binaryPath, "-name", "msb-\(c.name)"]
        args += ["-M", "microvm,x-option-roms=off,rtc=on"]
        switch c.accelerator {
        case .kvm: args += ["-accel", "kvm", "-cpu", "host"]
        case .tcg: args += ["-accel", "tcg", "-cpu", "qemu64,+rdrand"]
        }
        args += [
            "-m", "\(c.memoryMiB)", "-smp", "\(c.cpus)",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", c.kernelPath, "-initrd", c.initrdPath, "-append", kernelArgs.joined(separator: " "),
            "-serial", "file:\(c.consoleLogPath)",
            "-device", "virtio-serial-device,id=vser0",
            "-chardev", "socket,id=agent,path=\(c.agentSocketPath),server=on,wait=off",
            "-device", "virtserialport,bus=vser0.0,chardev=agent,name=agent",
            "-qmp", "unix:\(c.qmpSocketPath),server=on,wait=off",
        ]
        if let disk = c.rootDiskPath {
            args += [
                "-drive", "id=root,file=\(disk),format=qcow2,if=none,cache=writeback,discard=unmap",
                "-device", "virtio-blk-device,drive=root",
            ]
        }
        return args
    }

    package func start() throws(MSBError) {
        let c = configuration
        for path in [c.agentSocketPath, c.qmpSocketPath] { unlink(path) }
        let tsc = c.accelerator == .tcg ? AcceleratorProbe.hostTSCKilohertz() : nil
        let argv = arguments(tscKilohertz: tsc)
        let logFd = open(c.vmmLogPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { if logFd >= 0 { close(logFd) } }
        // Own session (no terminal signals), and SIGKILL if the supervisor dies, so no
        // QEMU outlives its owner.
        var spec = SpawnSpec(binaryPath, arguments: argv, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        spec.standardOutput = logFd
        spec.standardError = logFd
        spec.dieWithParent = true
        do {
            let child = try ChildProcess.spawn(spec)
            self.child = child
            process = ProcessIdentity.of(pid: child.pid) ?? ProcessIdentity(pid: child.pid, startTicks: 0)
        } catch {
            throw MSBError(.vmmFailure, "cannot start QEMU (\(binaryPath)): \(error.reason)")
        }
    }

    package func dialAgent(timeoutSeconds: Double) throws(MSBError) -> Int32 {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            if let exit = pollExit() {
                throw MSBError(.vmmFailure, "QEMU \(exit) before the guest channel opened\(vmmLogTail())")
            }
            if let fd = try? UnixSocket.connect(path: configuration.agentSocketPath) { return fd }
            guard Date() < deadline else {
                throw MSBError(.timeout, "QEMU did not open the guest channel within \(Int(timeoutSeconds))s")
            }
            usleep(5_000)
        }
    }

    package func terminate(graceSeconds: Double) {
        guard let child, reaped == nil else { return }
        child.signal(SIGTERM)
        let deadline = MonotonicClock.now() + graceSeconds
        while MonotonicClock.now() < deadline {
            if pollExit() != nil { return }
            usleep(10_000)
        }
        child.signal(SIGKILL)
        reaped = VirtualMachineExit(child.wait())
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

    /// The last lines QEMU printed, to explain a failed start.
    package func vmmLogTail() -> String {
        guard let text = try? String(contentsOfFile: configuration.vmmLogPath, encoding: .utf8) else { return "" }
        let lines = text.split(separator: "\n").suffix(3)
        return lines.isEmpty ? "" : ": " + lines.joined(separator: "; ")
    }
}
