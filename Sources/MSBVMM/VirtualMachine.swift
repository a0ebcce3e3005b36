import MSBCore
import MSBOS

/// The VMM layer: a factory that makes VM instances, and the instance operations the
/// supervisor needs. QEMU is one implementation; another VMM only has to provide these.
package protocol VirtualMachineManager: Sendable {
    var name: String { get }
    func makeInstance(_ configuration: VirtualMachineConfiguration) throws(MSBError) -> any VirtualMachineInstance
}

/// Everything a VMM needs to boot one sandbox. The device layout derived from it is
/// deterministic (same config, same devices in the same order), so a VM snapshot taken
/// from one boot can later be restored into another instance.
package struct VirtualMachineConfiguration: Sendable {
    package var name: String
    package var cpus: Int
    package var memoryMiB: Int
    package var accelerator: Accelerator
    package var kernelPath: String
    package var initrdPath: String
    /// Extra kernel command-line items (e.g. `msb.hostname=web`), after the tuned defaults.
    package var extraKernelArguments: [String]
    package var agentSocketPath: String
    package var qmpSocketPath: String
    package var consoleLogPath: String
    package var vmmLogPath: String
    /// A qcow2 root disk (the guest mounts it as its root), or nil for the initramfs root.
    package var rootDiskPath: String?

    package init(name: String, cpus: Int, memoryMiB: Int, accelerator: Accelerator, kernelPath: String, initrdPath: String,
                 extraKernelArguments: [String], agentSocketPath: String, qmpSocketPath: String, consoleLogPath: String,
                 vmmLogPath: String, rootDiskPath: String?) {
        self.name = name
        self.cpus = cpus
        self.memoryMiB = memoryMiB
        self.accelerator = accelerator
        self.kernelPath = kernelPath
        self.initrdPath = initrdPath
        self.extraKernelArguments = extraKernelArguments
        self.agentSocketPath = agentSocketPath
        self.qmpSocketPath = qmpSocketPath
        self.consoleLogPath = consoleLogPath
        self.vmmLogPath = vmmLogPath
        self.rootDiskPath = rootDiskPath
    }
}

/// How a VM process ended.
package struct VirtualMachineExit: Sendable, Equatable, CustomStringConvertible {
    package var exitCode: Int32?
    package var signal: Int32?

    package init(exitCode: Int32?, signal: Int32?) {
        self.exitCode = exitCode
        self.signal = signal
    }

    package init(_ status: WaitStatus) {
        self.init(exitCode: status.exitCode, signal: status.signal)
    }

    package var description: String {
        if let signal { return "killed by signal \(signal)" }
        return "exited with status \(exitCode ?? -1)"
    }
}

package protocol VirtualMachineInstance: AnyObject {
    var configuration: VirtualMachineConfiguration { get }
    /// The VMM process, once started.
    var process: ProcessIdentity? { get }
    /// Starts the VMM process; returns once it runs (not once the guest booted).
    func start() throws(MSBError)
    /// Connects to the guest agent's channel and returns the connected descriptor.
    func dialAgent(timeoutSeconds: Double) throws(MSBError) -> Int32
    /// Asks the VMM to end now: SIGTERM, then SIGKILL after `graceSeconds`. Blocks up to
    /// that long: for the supervisor's exit paths only, never inside its serving loop.
    func terminate(graceSeconds: Double)
    /// Sends a signal to the VMM process without waiting (SIGTERM, then SIGKILL, from a poll loop).
    func signal(_ signo: Int32)
    /// Reaps the VMM process if it has ended; never blocks.
    func pollExit() -> VirtualMachineExit?

    // Optional abilities: the defaults say they are unsupported.
    func saveSnapshot(to path: String) throws(MSBError)
    func restoreSnapshot(from path: String) throws(MSBError)
}

extension VirtualMachineInstance {
    package func saveSnapshot(to path: String) throws(MSBError) {
        throw MSBError(.unsupported, "saving snapshots is not supported by this VMM")
    }
    package func restoreSnapshot(from path: String) throws(MSBError) {
        throw MSBError(.unsupported, "restoring snapshots is not supported by this VMM")
    }
}
