import Glibc
import MSBCore
import MSBOS

/// The VMM layer: a factory that makes VM instances, and the instance operations the
/// supervisor needs. QEMU is one implementation; another VMM only has to provide these.
package protocol VirtualMachineManager: Sendable {
    var name: String { get }
    /// Whether instances can save a booted guest and resume it (start templates).
    var supportsSavedState: Bool { get }
    func makeInstance(_ configuration: VirtualMachineConfiguration) throws(MSBError) -> any VirtualMachineInstance
}

extension VirtualMachineManager {
    package var supportsSavedState: Bool { false }
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
    /// The guest's serial console, kept bounded (see ConsoleRecorder).
    package var consoleLogPath: String
    package var vmmLogPath: String
    /// A qcow2 root disk (the guest mounts it as its root), or nil for the initramfs root.
    package var rootDiskPath: String?
    /// The read-only image under the root disk (its backing file), opened by the supervisor.
    package var rootDiskBasePath: String?
    /// Read-only qcow2 layers between the root disk and the image, top first: the disks of
    /// the snapshots a sandbox was forked from.
    package var rootDiskLayers: [String] = []
    /// Who the VMM runs as; nil keeps the caller's identity (when msb does not run as root).
    package var confinement: VMMConfinement?
    /// Where the guest's RAM lives, and whether the VM boots or resumes a saved one.
    package var memory: GuestMemory = .anonymous
    /// TCG's translated-code cache. QEMU 7.2's default is 1 GiB, touched as code is
    /// translated: a busy sandbox could grow by that much. 64 MiB bounds it with no
    /// measured cost (bench/tcg-cache.py); `MSB_TCG_CACHE_MIB` overrides it.
    package var translationCacheMiB = VirtualMachineConfiguration.defaultTranslationCacheMiB
    /// The guest's network card, or nil for none at all (`--no-net`).
    package var network: NetworkAttachment?
    /// virtio-fs devices, one per volume: each the VMM's end of a connection to its
    /// virtiofsd (vhost-user), which needs guest RAM it can map (`.sharedAnonymous`).
    package var volumes: [VolumeAttachment] = []
    package static let defaultTranslationCacheMiB = 64

    package init(name: String, cpus: Int, memoryMiB: Int, accelerator: Accelerator, kernelPath: String, initrdPath: String,
                 extraKernelArguments: [String], consoleLogPath: String, vmmLogPath: String, rootDiskPath: String?,
                 rootDiskBasePath: String? = nil, confinement: VMMConfinement? = nil) {
        self.name = name
        self.cpus = cpus
        self.memoryMiB = memoryMiB
        self.accelerator = accelerator
        self.kernelPath = kernelPath
        self.initrdPath = initrdPath
        self.extraKernelArguments = extraKernelArguments
        self.consoleLogPath = consoleLogPath
        self.vmmLogPath = vmmLogPath
        self.rootDiskPath = rootDiskPath
        self.rootDiskBasePath = rootDiskBasePath
        self.confinement = confinement
    }
}

/// A virtio-net card whose frames go over a stream socket (passt's protocol: each frame
/// preceded by its length). The card is part of the device layout, so a template or
/// snapshot saved with one restores only into a VM with one.
package struct NetworkAttachment: Sendable, Equatable {
    /// The VMM's end of the connection to the sandbox's network process; nil gives the card
    /// a connection that leads nowhere (a template's or snapshot writer's VM: its guest
    /// never brings the interface up there).
    package var descriptor: Int32?
    /// `02:…`: the card's address at boot. A restored guest keeps the saved one until its
    /// agent sets the sandbox's own (see GuestNetwork).
    package var macAddress: String

    package init(descriptor: Int32?, macAddress: String) {
        self.descriptor = descriptor
        self.macAddress = macAddress
    }
}

/// A vhost-user-fs device: the guest mounts it by `tag`.
package struct VolumeAttachment: Sendable, Equatable {
    /// The VMM's end of its connection to the volume's virtiofsd.
    package var descriptor: Int32
    package var tag: String

    package init(descriptor: Int32, tag: String) {
        self.descriptor = descriptor
        self.tag = tag
    }
}

/// Where guest RAM lives (see the snapshot notes in docs/ARCHITECTURE.md).
package enum GuestMemory: Sendable, Equatable {
    /// Private anonymous memory: a plain cold boot.
    case anonymous
    /// Anonymous memory shared with other processes (a memfd): a cold boot whose RAM a
    /// vhost-user device server (virtiofsd) maps too.
    case sharedAnonymous
    /// A file mapped shared: everything the guest writes lands in the file, so that a
    /// template saved with `x-ignore-shared` needs no copy of its RAM in the state file.
    case sharedFile(path: String)
    /// Resume a template: its RAM mapped copy-on-write (pages the guest does not write stay
    /// shared by every VM restored from it) from `memoryDescriptor`, a sealed memfd that
    /// nobody can write (see TemplateKeeper), plus the device state saved beside it.
    case restore(memoryDescriptor: Int32, statePath: String)
    /// Receive a running guest by live migration from `streamDescriptor` into a file
    /// mapped shared (like `.sharedFile`), and stay paused: a snapshot's writer, which then
    /// saves the device state as a template does.
    case receive(sharedFilePath: String, streamDescriptor: Int32)

    /// RAM mapped copy-on-write from a template's or snapshot's memory.
    var isRestore: Bool {
        if case .restore = self { return true }
        return false
    }

    /// Whether the guest comes from saved state rather than a kernel boot.
    var isIncoming: Bool {
        switch self {
        case .restore, .receive: true
        case .anonymous, .sharedAnonymous, .sharedFile: false
        }
    }
}

/// The unprivileged identity a VMM runs as when msb runs as root: a uid and gid of its own
/// per sandbox (no passwd entry needed), so one guest that breaks out of QEMU is an
/// unprivileged user that cannot reach msb's state (0700), another sandbox's QEMU or the
/// files of any real user.
package struct VMMConfinement: Sendable, Equatable {
    package var uid: Int32
    package var gid: Int32

    package init(uid: Int32, gid: Int32) {
        self.uid = uid
        self.gid = gid
    }

    /// The first uid of msb's range: high, far from the ids distributions hand out.
    static let firstID: UInt32 = 0x6D5B_0000

    /// The identity for the sandbox whose state lives in `sandboxDirectory`, or nil when
    /// the caller is not root (then QEMU already runs unprivileged, as the caller).
    package static func forSandbox(directory: String, accelerator: Accelerator) -> VMMConfinement? {
        identity(hashing: directory, from: firstID, accelerator: accelerator)
    }

    /// The identity of the sandbox's network process (passt): its own, because the egress
    /// filter matches it. Two sandboxes whose ids collide get each other's rules as well,
    /// which can only close more, never open.
    package static func forNetwork(directory: String) -> VMMConfinement? {
        identity(hashing: directory, from: firstID + 2 * 65_536, accelerator: .tcg)
    }

    /// The identity of the QEMU that builds the template with `key` (it writes the RAM
    /// file; restored VMs never see that file, only a sealed copy: see TemplateKeeper).
    package static func forTemplate(key: String, accelerator: Accelerator) -> VMMConfinement? {
        identity(hashing: key, from: firstID + 65_536, accelerator: accelerator)
    }

    /// One of 65536 ids from `first`, by FNV-1a of `text`: stable across restarts, distinct
    /// in practice. Nil when msb is not root (QEMU then runs as the caller).
    private static func identity(hashing text: String, from first: UInt32, accelerator: Accelerator) -> VMMConfinement? {
        guard geteuid() == 0 else { return nil }
        let id = Int32(bitPattern: first + StableHash.fnv1a32(text.utf8) % 65_536)
        // KVM needs /dev/kvm, normally group kvm: then that is the VMM's group.
        var kvm = stat()
        let gid = accelerator == .kvm && stat("/dev/kvm", &kvm) == 0 ? Int32(bitPattern: kvm.st_gid) : id
        return VMMConfinement(uid: id, gid: gid)
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
    /// Stops the vCPUs and writes the device state to `path` (guest RAM is not in it when
    /// the VM runs on a `.sharedFile`). The VM stays stopped.
    func saveState(to path: String) throws(MSBError)
    /// For a VM started with `.restore`: loads the saved state and runs the guest.
    func resumeFromSavedState() throws(MSBError)
    /// For a VM started with `.receive`: starts listening on the migration stream (returns
    /// at once: QEMU reads it on its own while the source sends).
    func beginReceivingMigration() throws(MSBError)
    /// Waits until the migrated guest is in; it stays paused.
    func finishReceivingMigration(timeoutSeconds: Double) throws(MSBError)
    /// Live-migrates the running guest out through `descriptor` (whole RAM and devices).
    /// The guest is stopped at the switchover and stays stopped (QEMU flushed its disks);
    /// `continueRunning` runs it on.
    func migrateOut(to descriptor: Int32, timeoutSeconds: Double) throws(MSBError)
    /// Stops the vCPUs (the VM uses no CPU until `continueRunning`); memory stays as it is.
    func pause() throws(MSBError)
    func continueRunning() throws(MSBError)
}

extension VirtualMachineInstance {
    package func saveState(to path: String) throws(MSBError) {
        throw MSBError(.unsupported, "saving a VM's state is not supported by this VMM")
    }
    package func resumeFromSavedState() throws(MSBError) {
        throw MSBError(.unsupported, "restoring a VM's state is not supported by this VMM")
    }
    package func beginReceivingMigration() throws(MSBError) {
        throw MSBError(.unsupported, "live migration is not supported by this VMM")
    }
    package func finishReceivingMigration(timeoutSeconds: Double) throws(MSBError) {
        throw MSBError(.unsupported, "live migration is not supported by this VMM")
    }
    package func migrateOut(to descriptor: Int32, timeoutSeconds: Double) throws(MSBError) {
        throw MSBError(.unsupported, "live migration is not supported by this VMM")
    }
    package func pause() throws(MSBError) {
        throw MSBError(.unsupported, "pausing is not supported by this VMM")
    }
    package func continueRunning() throws(MSBError) {
        throw MSBError(.unsupported, "pausing is not supported by this VMM")
    }
}
