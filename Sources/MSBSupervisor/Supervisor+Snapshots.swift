import CMSBSys
import Foundation
import MSBCore
import MSBOS
import MSBProtocol
import MSBVMM

/// Named snapshots: saving the running guest (`msb snapshot create`) and starting a fork
/// from one (`msb create --from`).
///
/// Saving is a live migration into a second QEMU, the writer, whose RAM is a file mapped
/// shared: the guest runs on while its memory is copied and stops only for the final
/// pass. While it is stopped (QEMU has flushed its disk) its overlay is copied as the
/// snapshot's disk layer; then it runs on, and the writer saves its device state with
/// `x-ignore-shared`, as a template build does. A fork then restores exactly like a
/// template: the RAM file is mapped copy-on-write by every fork, through a keeper.
extension Supervisor {
    /// How long the whole guest may take to reach the writer.
    static let snapshotTransferSeconds = 120.0

    /// Serves `.saveSnapshot`: the answer is "" when the snapshot is in `directory`.
    func saveSnapshot(into directory: String) -> Message {
        guard let vm, stop == nil, agent != nil else { return .snapshotSaved("sandbox is stopping") }
        // The request can come through a server's attach stream: only an empty work
        // directory of this sandbox's own snapshot store is written to.
        let store = SnapshotStore(directory: paths.snapshots)
        guard store.isEmptyWorkDirectory(directory) else { return .snapshotSaved("refused: not a snapshot work directory") }
        do {
            try writeSnapshot(of: vm, into: directory)
        } catch {
            log("snapshot failed: \(error.message)")
            return .snapshotSaved(error.message)
        }
        return .snapshotSaved("")
    }

    private func writeSnapshot(of source: any VirtualMachineInstance, into work: String) throws(MSBError) {
        guard manager.supportsSavedState else {
            throw MSBError(.unsupported, "the VMM (\(manager.name)) cannot save a running guest")
        }
        let began = MonotonicClock.now()
        let base = source.configuration
        let inputs = try templateInputs(base)
        // The writer runs as the sandbox's own unprivileged identity, like its QEMU.
        let ramPath = try Self.createRAMFile(in: work, memoryMiB: base.memoryMiB, owner: base.confinement)
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw MSBError(.vmmFailure, "cannot create the migration channel: \(String(cString: strerror(errno)))")
        }
        defer { for fd in pair where fd >= 0 { close(fd) } }
        var config = base
        config.name = name + "-snapshot"
        config.memory = .receive(sharedFilePath: ramPath, streamDescriptor: pair[1])
        config.consoleLogPath = work + "/console.log"
        config.vmmLogPath = work + "/qemu.log"
        // The same card, leading nowhere: the writer's guest never runs.
        config.network = base.network.map { NetworkAttachment(descriptor: nil, macAddress: $0.macAddress) }
        // The writer never runs the guest, but needs the same devices: a throwaway disk.
        if let image = base.rootDiskBasePath {
            config.rootDiskPath = work + "/writer.qcow2"
            config.rootDiskLayers = []
            try RootDisk.createOverlay(base: image, at: work + "/writer.qcow2")
            if let confinement = base.confinement { _ = chown(work + "/writer.qcow2", uid_t(bitPattern: confinement.uid), gid_t(bitPattern: confinement.gid)) }
        }
        let writer = try manager.makeInstance(config)
        defer { writer.terminate(graceSeconds: 1) }
        try writer.start()
        close(pair[1])
        pair[1] = -1
        try writer.beginReceivingMigration()
        try source.migrateOut(to: pair[0], timeoutSeconds: Self.snapshotTransferSeconds)
        // The guest is stopped now: its disk, as QEMU flushed it, is the snapshot's layer.
        let stopped = MonotonicClock.now()
        var diskProblem: MSBError?
        if let overlay = base.rootDiskPath {
            do { try Self.copyFile(overlay, to: work + "/disk.qcow2") } catch { diskProblem = error }
        }
        let resumed = MonotonicClock.now()
        if !paused {
            do { try source.continueRunning() } catch {
                throw MSBError(.vmmFailure, "the sandbox did not run on after its snapshot: \(error.message)")
            }
        }
        if let diskProblem { throw diskProblem }
        if let overlay = base.rootDiskPath {
            // What the guest's QEMU wrote is checked like any overlay: it must lie on the
            // layer below it and nothing else.
            guard QCOW2.backingFile(of: work + "/disk.qcow2") == QCOW2.backingFile(of: overlay),
                  QCOW2.backingFile(of: overlay) == (base.rootDiskLayers.first ?? base.rootDiskBasePath) else {
                throw MSBError(.integrity, "the sandbox's disk does not lie on its image any more; not saved")
            }
        }
        try writer.finishReceivingMigration(timeoutSeconds: Self.snapshotTransferSeconds)
        let received = MonotonicClock.now()
        try writer.saveState(to: work + "/state.bin")
        writer.terminate(graceSeconds: 1)
        Self.finishSavedGuest(in: work, ramPath: ramPath, leftovers: ["writer.qcow2"])
        try writeGuestState(inputs: inputs, to: work + "/guest.json")
        let ms = Self.milliseconds
        log("snapshot saved in \(ms(began, MonotonicClock.now())) ms: memory sent \(ms(began, stopped)) ms, "
            + "guest stopped for the disk copy \(ms(stopped, resumed)) ms, writer done \(ms(resumed, received)) ms, "
            + "state saved \(ms(received, MonotonicClock.now())) ms")
    }

    /// Records what the guest's memory does not say (see SavedGuestState).
    private func writeGuestState(inputs: TemplateInputs, to path: String) throws(MSBError) {
        let idle = interpreters.interpreters.values.filter { $0.current == nil && $0.queue.isEmpty }
        let busy = interpreters.interpreters.values.filter { $0.current != nil || !$0.queue.isEmpty }
        let state = SavedGuestState(
            inputs: inputs,
            interpreters: idle.map { SavedGuestState.Interpreter(language: $0.language, execId: $0.execId, nonce: $0.nonce) },
            nextRequestId: nextRequestId,
            abandonedExecIds: Array(routes.keys) + busy.map(\.execId))
        guard let data = try? JSONEncoder.msb.encode(state),
              FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw MSBError(.stateStore, "cannot record the snapshot's guest state")
        }
    }

    /// Copies a file (a qcow2 overlay holds only what the guest wrote: small).
    static func copyFile(_ source: String, to target: String) throws(MSBError) {
        let input = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard input >= 0 else { throw MSBError(.stateStore, "cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard output >= 0 else { throw MSBError(.stateStore, "cannot create \(target): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = read(input, &buffer, buffer.count)
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw MSBError(.stateStore, "cannot copy the sandbox's disk: \(String(cString: strerror(errno)))")
            }
            do { try FileDescriptorIO.writeAll(output, Array(buffer[0..<count])) } catch {
                throw MSBError(.stateStore, "cannot copy the sandbox's disk: \(error.description)")
            }
        }
        guard fsync(output) == 0 else { throw MSBError(.stateStore, "cannot write \(target): \(String(cString: strerror(errno)))") }
    }

    /// A fork's first start: the snapshot's guest, resumed with this sandbox's own disk on
    /// the snapshot's layer; its supervisor takes over the REPL interpreters running in it.
    /// There is no cold-boot fallback: a boot would not have the snapshot's processes.
    func restoreFromSnapshot(_ base: VirtualMachineConfiguration, snapshot: String) throws(MSBError) -> VirtualMachineStart {
        let store = SnapshotStore(directory: paths.snapshots)
        let saved = try store.guestState(snapshot)
        guard saved.inputs == (try templateInputs(base)) else {
            let card = saved.inputs.network ? "with a network" : "without a network (--no-net)"
            throw MSBError(.invalidState, "snapshot \(snapshot) was taken with another kernel, initramfs or QEMU, another size, or not \(card); it cannot resume here",
                           hint: "create the sandbox from its image instead, or \(saved.inputs.network ? "drop --no-net" : "add --no-net")")
        }
        let template = Template(key: snapshot, directory: store.path(snapshot), inputs: saved.inputs)
        let start = try resume(template, from: store.templates, base: base)
        for language in saved.interpreters {
            interpreters.adopt(language: language.language, execId: language.execId, nonce: language.nonce)
        }
        nextRequestId = max(nextRequestId, saved.nextRequestId)
        // Nobody here waits for the commands that had a client in the source.
        for id in saved.abandonedExecIds { start.agent.signal(id, SIGKILL) }
        return VirtualMachineStart(agent: start.agent, restored: true, detail: start.detail, kind: "snapshot")
    }
}
