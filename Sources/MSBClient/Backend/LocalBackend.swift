import CMSBSys
import Foundation
import MSBCore
import MSBNetwork
import MSBVMM
import MSBImages
import MSBOS
import MSBProtocol

/// Sandboxes as microVMs on this host: records in SQLite, one supervisor process per
/// running sandbox, exec over the supervisor's control socket.
package final class LocalBackend: SupervisorStreamBackend {
    package let paths: MSBPaths
    /// The server namespace these sandboxes belong to (`default` for the CLI's own).
    package let namespace: String
    /// Receives one-off notices for people (the TCG fallback) — stderr in the CLI.
    private let notice: (String) -> Void
    private var storeInstance: StateStore?
    /// Host directories volumes may name, resolved, subtrees included (a server's
    /// `--allow-volume`); nil: any directory (the CLI's own user).
    package var allowedVolumeRoots: [String]?
    /// How many named volumes this home may keep (a server namespace's share); nil: any.
    package var volumeLimit: Int?

    package init(paths: MSBPaths = MSBPaths(), namespace: String = "default", notice: @escaping (String) -> Void = { _ in }) {
        self.paths = paths
        self.namespace = namespace
        self.notice = notice
    }

    /// Opened on first use: `exec` never needs the database on its happy path.
    func store() throws(MSBError) -> StateStore {
        if let storeInstance { return storeInstance }
        let store = try StateStore(paths: paths)
        storeInstance = store
        return store
    }

    func described(_ record: SandboxRecord) -> SandboxInfo {
        var info = record.info
        info.namespace = namespace
        return info
    }

    private func launcher() -> SupervisorLauncher { SupervisorLauncher(paths: paths) }

    // MARK: Lifecycle

    package func create(_ requested: SandboxConfig, start: Bool, fetch: ImageFetch?) throws(MSBError) -> SandboxInfo {
        try InputParsing.validateName(requested.name)
        guard paths.socketPathsFit(requested.name) else {
            throw MSBError(.invalidArgument, "sandbox name '\(requested.name)' is too long for the state directory \(paths.home)",
                           hint: "unix socket paths are limited to 107 bytes; use a shorter name or MSB_HOME")
        }
        // Checked first: a refused volume is a usage error, whatever the image.
        let volumes = try resolvedVolumes(requested)
        if requested.snapshot == nil, let fetch { try ensureImage(requested.image, fetch) }
        let images = ImageStore(paths: paths)
        var config = requested
        // The disk under the sandbox's overlay: its image's, or a snapshot's layer.
        var diskBase: (path: String, format: String)?
        if let snapshot = requested.snapshot {
            config = try forkConfig(requested, snapshot: snapshot)
            if config.imageDigest != nil { diskBase = (SnapshotStore(directory: paths.snapshots).diskLayer(snapshot), "qcow2") }
        } else {
            let image = try images.get(requested.image)
            config.image = image.name
            // The sandbox keeps the image it was made from, whatever the name points at later.
            let imageDigest = image.kind == "disk" ? ContentDigest(image.digest) : nil
            if image.kind == "disk" && imageDigest == nil {
                throw MSBError(.integrity, "image \(image.name) has no valid content digest", hint: "pull or build it again")
            }
            config.imageDigest = imageDigest?.description
            // The image's defaults come first; the sandbox's own -e and -w override them.
            config.environment = image.environment + config.environment
            if config.workingDirectory.isEmpty { config.workingDirectory = image.workingDirectory }
            if config.user == nil { config.user = image.user }
            if let imageDigest { diskBase = (images.rootDisk(imageDigest), "raw") }
        }
        config.volumes = volumes
        _ = try GuestArtifacts(directory: paths.artifacts).validated()
        let decision = try AcceleratorProbe.decide(config.accelerator)
        let store = try store()
        try store.insert(SandboxRecord(config: config, status: .created, createdAt: Date()), creatingVolumesWithin: volumeLimit)
        do {
            // Only once the sandbox is really being made: a refused create prints no notice.
            if start { try announceAccelerator(decision) }
            // The record claims the name, so a directory already there belongs to no sandbox:
            // a remove (or `--replace`) killed between dropping the record and the directory.
            try? FileManager.default.removeItem(atPath: paths.sandboxDirectory(config.name))
            try FileManager.default.createDirectory(
                atPath: paths.sandboxDirectory(config.name), withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            if let diskBase {
                try RootDisk.createOverlay(base: diskBase.path, at: paths.rootDisk(config.name), baseFormat: diskBase.format)
            }
            return start ? try boot(config.name) : try described(existing(config.name))
        } catch {
            // create is all or nothing: a sandbox that never booted leaves no record behind.
            try? store.delete(config.name)
            try? FileManager.default.removeItem(atPath: paths.sandboxDirectory(config.name))
            throw MSBError.wrap(error, .internalError, "failed to create sandbox \(config.name)")
        }
    }

    package func start(_ name: String) throws(MSBError) -> SandboxInfo {
        let record = try existing(name)
        // A host directory gone, or (on a server) no longer allowed, stops the start here.
        _ = try VolumeMount.resolvingHostPaths(record.config.volumes ?? [], allowedRoots: allowedVolumeRoots)
        try announceAccelerator(AcceleratorProbe.decide(record.config.accelerator))
        return try boot(name)
    }

    /// Spawns the supervisor under the database's write lock (so two concurrent starts
    /// cannot both spawn one), then waits outside the lock for the guest to answer.
    private func boot(_ name: String) throws(MSBError) -> SandboxInfo {
        let store = try store()
        var launched: SupervisorLauncher.Launched?
        let launcher = launcher()
        let record = try store.update(name) { (record: inout SandboxRecord) throws(MSBError) in
            record = record.reconciled()
            switch record.status {
            case .running, .starting, .paused: return  // already up: start is idempotent
            case .stopping:
                throw MSBError(.invalidState, "failed to start: sandbox \(name) is stopping", hint: "try again in a moment")
            case .draining:
                throw MSBError(.invalidState, "failed to start: sandbox \(name) is draining",
                               hint: "it stops once its running commands end: 'msb wait \(name)', then start it")
            case .created, .stopped, .crashed:
                // A published port someone else holds is this start's clear error, before
                // anything runs (the supervisor checks again: another start may race).
                try HostPorts.checkAvailable(record.config.network?.publishedPorts ?? [])
                let spawned = try launcher.spawn(name: name)
                launched = spawned
                record.status = .starting
                record.statusReason = nil
                record.supervisor = spawned.process
                record.vmm = nil
            }
        }
        guard let launched else { return described(record) }
        try launcher.waitUntilReady(launched, name: name, timeoutSeconds: SupervisorTimeouts.bootSeconds + 20)
        let started = try existing(name)
        // A start that should have resumed a template but booted says why, once.
        if let boot = started.boot, boot.hasPrefix("cold boot: "), started.config.coldBoot != true {
            notice("msb: \(name) started by a cold boot: " + boot.dropFirst("cold boot: ".count))
        }
        return described(started)
    }

    package func stop(_ name: String, force: Bool) throws(MSBError) -> SandboxInfo {
        let record = try existing(name)
        guard record.status.expectsSupervisor else { return described(record) }  // already stopped
        if !requestStopThroughSupervisor(name, force: force) {
            // No control socket (still booting), or no confirmation in time: signal the processes directly.
            terminate(record, force: force)
        }
        let after = try existing(name)
        if after.status.expectsSupervisor {
            throw MSBError(.timeout, "sandbox \(name) did not stop in time", hint: "use 'msb stop --force \(name)'")
        }
        return described(after)
    }

    /// Asks the supervisor to stop and waits for it to confirm. False if it cannot be reached.
    private func requestStopThroughSupervisor(_ name: String, force: Bool) -> Bool {
        guard let fd = try? UnixSocket.connect(path: paths.controlSocket(name)) else { return false }
        // A graceful stop waits for the guest, then the VMM's SIGTERM grace.
        let timeout = SupervisorTimeouts.gracefulStopSeconds + SupervisorTimeouts.vmmTerminateGraceSeconds + 10
        do {
            try SupervisorConnection(fd: fd).stop(force: force, timeoutSeconds: timeout)
            return true
        } catch {
            // A supervisor that does not confirm in time is ended the hard way, like docker's stop timeout.
            return false
        }
    }

    private func terminate(_ record: SandboxRecord, force: Bool) {
        let supervisor = record.supervisor
        supervisor?.signal(force ? SIGKILL : SIGTERM)
        let deadline = Date().addingTimeInterval(force ? 5 : SupervisorTimeouts.gracefulStopSeconds + 10)
        while supervisor?.isAlive ?? false, Date() < deadline { usleep(20_000) }
        if supervisor?.isAlive ?? false { supervisor?.signal(SIGKILL) }
        // The VMM dies with its supervisor (PDEATHSIG); make sure of it all the same.
        record.vmm?.signal(SIGKILL)
        _ = try? store().update(record.config.name) { r in
            guard r.status.expectsSupervisor else { return }
            r.status = .stopped
            r.statusReason = force ? "stopped: killed by user" : "stopped by user"
            r.supervisor = nil
            r.vmm = nil
        }
    }

    package func remove(_ name: String, force: Bool) throws(MSBError) {
        let record = try existing(name)
        if record.status.expectsSupervisor {
            guard force else {
                throw MSBError(.invalidState, "failed to remove: sandbox \(name) is \(record.status.rawValue)",
                               hint: "stop it first with 'msb stop \(name)', or use 'msb rm -f \(name)'")
            }
            _ = try stop(name, force: true)
        }
        // A VMM orphaned by a killed supervisor would hold the sandbox's files: end it.
        record.vmm?.signal(SIGKILL)
        // Under the record's lock: the sandbox is still stopped (a start in between wins and
        // the remove fails), and its directory moves aside before the name is free, so a
        // create of the same name that follows never has its new directory deleted by us.
        let removed = paths.sandboxesDirectory + "/.removed-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        try store().delete(name) { (stored: SandboxRecord) throws(MSBError) in
            let status = stored.reconciled().status
            guard !status.expectsSupervisor else {
                throw MSBError(.invalidState, "failed to remove: sandbox \(name) was started again (\(status.rawValue))",
                               hint: "stop it first with 'msb stop \(name)', or use 'msb rm -f \(name)'")
            }
            _ = rename(paths.sandboxDirectory(name), removed)
        }
        // Whatever a remove killed at this point left behind goes too.
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: paths.sandboxesDirectory)) ?? []
        for entry in entries where entry.hasPrefix(".removed-") {
            try? FileManager.default.removeItem(atPath: paths.sandboxesDirectory + "/" + entry)
        }
    }

    package func list() throws(MSBError) -> [SandboxInfo] {
        var infos: [SandboxInfo] = []
        for record in try store().list() { infos.append(try described(persistReconciled(record))) }
        return infos
    }

    package func inspect(_ name: String) throws(MSBError) -> SandboxInfo {
        try described(existing(name))
    }

    /// The record as it really is, with any correction written back.
    func existing(_ name: String) throws(MSBError) -> SandboxRecord {
        try InputParsing.validateName(name)
        guard let record = try store().get(name) else { throw MSBError.sandboxNotFound(name) }
        return try persistReconciled(record)
    }

    private func persistReconciled(_ record: SandboxRecord) throws(MSBError) -> SandboxRecord {
        let truth = record.reconciled()
        guard truth != record else { return record }
        record.vmm?.signal(SIGKILL)
        // A supervisor that died may have left its VMM behind (it normally dies with it).
        return try store().update(record.config.name) { (stored: inout SandboxRecord) throws(MSBError) in
            let again = stored.reconciled()
            if again != stored {
                stored = again
                stored.vmm = nil
            }
        }
    }

    // MARK: Metrics and streams (exec and runCode come from SupervisorStreamBackend)

    package func setPaused(_ name: String, _ paused: Bool) throws(MSBError) -> SandboxInfo {
        let action = paused ? "pause" : "resume"
        let record = try existing(name).reconciled()
        guard record.status == .running || record.status == .paused else {
            throw MSBError(.invalidState, "failed to \(action): sandbox \(name) is \(record.status.rawValue)",
                           hint: record.status.expectsSupervisor ? "try again in a moment" : "start it with 'msb start \(name)'")
        }
        guard let fd = try? UnixSocket.connect(path: paths.controlSocket(name)) else { throw try notRunningError(name, action: action) }
        do { try SupervisorConnection(fd: fd).setPaused(paused) } catch {
            throw MSBError(error.code, "failed to \(action): \(error.message)", hint: error.hint)
        }
        return described(try existing(name))
    }

    package func metrics(_ name: String) throws(MSBError) -> SandboxMetrics {
        let record = try existing(name)
        var metrics = SandboxMetrics(name: name, namespace: namespace, status: record.status, memoryLimitMiB: record.config.memoryMiB)
        guard record.status.guestRuns else { return metrics }
        guard let fd = try? UnixSocket.connect(path: paths.controlSocket(name)) else { return metrics }
        let stats: GuestStats
        do { stats = try SupervisorConnection(fd: fd).stats() } catch {
            throw MSBError(error.code, "cannot read the metrics of sandbox \(name): \(error.message)", hint: error.hint)
        }
        metrics.cpuPercent = Double(stats.cpuPercentMilli) / 1000
        metrics.memoryUsedMiB = Int(clamping: (stats.memoryTotalKiB - min(stats.memoryAvailableKiB, stats.memoryTotalKiB)) / 1024)
        // A disk image's writable layer is its overlay file on the host.
        metrics.diskUsedBytes = RootDisk.writtenBytes(overlay: paths.rootDisk(name)) ?? Int(clamping: stats.diskUsedBytes)
        metrics.uptimeSeconds = Double(stats.uptimeMilliseconds) / 1000
        // The guest's own counts (0 without a network): informational, like its memory figures.
        metrics.networkReceivedBytes = Int(clamping: stats.networkReceivedBytes)
        metrics.networkSentBytes = Int(clamping: stats.networkSentBytes)
        return metrics
    }

    /// The supervisor's control socket (the server hands it to remote clients as is).
    package func openSupervisorStream(_ name: String, purpose: SupervisorStreamPurpose) throws(MSBError) -> Int32 {
        try InputParsing.validateName(name)
        do {
            return try UnixSocket.connect(path: paths.controlSocket(name))
        } catch {
            throw try notRunningError(name, action: purpose.action)
        }
    }

    /// Explains why a sandbox's control socket cannot be reached.
    func notRunningError(_ name: String, action: String) throws(MSBError) -> MSBError {
        let record = try existing(name)
        switch record.status {
        case .running, .starting, .paused:
            return MSBError(.agentFailure, "failed to \(action): cannot reach the supervisor of sandbox \(name)",
                            hint: "see \(paths.supervisorLog(name))")
        default:
            return MSBError(.invalidState, "failed to \(action): sandbox \(name) is \(record.status.rawValue)",
                            hint: "start it with 'msb start \(name)'")
        }
    }

    // MARK: Images

    package func listImages() throws(MSBError) -> [ImageInfo] { try ImageStore(paths: paths).list() }

    /// `replaceExisting` false leaves a name that is already an image as it is (a server's
    /// namespace keys may add images every tenant sees, but not move one).
    package func pullImage(_ reference: String, insecure: Bool, credentials: String?, replaceExisting: Bool = true,
                           progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        try ImagePuller(store: ImageStore(paths: paths), limits: PullLimits(environment: ProcessInfo.processInfo.environment), progress: progress)
            .pull(reference, insecure: insecure, credentials: credentials, replaceExisting: replaceExisting)
    }

    package func pullImage(_ reference: String, insecure: Bool, credentials: String?,
                           progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        try pullImage(reference, insecure: insecure, credentials: credentials, replaceExisting: true, progress: progress)
    }

    package func buildImage(_ name: String, force: Bool, progress: @escaping @Sendable (String) -> Void) throws(MSBError) -> ImageInfo {
        try ImageBuilder(store: ImageStore(paths: paths), progress: progress).build(name, force: force)
    }

    package func removeImage(_ name: String, force: Bool) throws(MSBError) {
        try removeImage(name, usedBy: imageUsers(), force: force)
    }

    /// (sandbox, image digest) of this home's sandboxes; a server gathers them from every
    /// namespace, since images are shared by all of them.
    package func imageUsers() throws(MSBError) -> [(String, String)] {
        let images = ImageStore(paths: paths)
        let sandboxes: [(String, String)] = try list().compactMap { sandbox in
            // Sandboxes made before images were content-addressed name their image by tag.
            guard let digest = sandbox.config.imageDigest ?? (try? images.get(sandbox.config.image))?.digest else { return nil }
            return (sandbox.namespace == "default" ? sandbox.config.name : "\(sandbox.namespace)/\(sandbox.config.name)", digest)
        }
        // A snapshot's disk lies on its image too.
        let snapshots: [(String, String)] = SnapshotStore(directory: paths.snapshots).list().compactMap { snapshot in
            snapshot.config.imageDigest.map { ("snapshot " + (namespace == "default" ? "" : namespace + "/") + snapshot.info.name, $0) }
        }
        return sandboxes + snapshots
    }

    /// Removes an image unless one of `users` (sandbox, image digest) uses it.
    package func removeImage(_ name: String, usedBy users: [(String, String)], force: Bool) throws(MSBError) {
        try ImageStore(paths: paths).remove(name, usedBy: users.map { (name: $0.0, imageDigest: $0.1) }, force: force)
    }

    package func pruneImages() throws(MSBError) -> Int { try pruneImages(usedBy: Set(imageUsers().map(\.1))) }

    package func pruneImages(usedBy digests: Set<String>) throws(MSBError) -> Int {
        let removed = ImageStore(paths: paths).prune(usedBy: digests)
        // Templates made from a kernel, initramfs or QEMU that has since changed are never
        // used again (sandboxes restored from them keep their mapping).
        let artifacts = GuestArtifacts(directory: paths.artifacts)
        let current = [artifacts.kernelPath, artifacts.initrdPath, QEMUManager().binaryPath].map { FileIdentity(path: $0) }
        return removed + TemplateStore(directory: paths.templates).removeStale { inputs in
            inputs.layout == TemplateInputs.currentLayout && [inputs.kernel, inputs.initramfs, inputs.qemu] == current
        }
    }

    // MARK: Notices

    /// Says once per state directory that TCG is used and why.
    private func announceAccelerator(_ decision: AcceleratorDecision) throws(MSBError) {
        guard let reason = decision.fallbackReason else { return }
        let marker = paths.home + "/.tcg-notice-shown"
        guard !FileManager.default.fileExists(atPath: marker) else { return }
        notice("msb: KVM is not usable here (\(reason)); using QEMU software emulation (TCG), which is slower")
        try paths.prepare()
        _ = FileManager.default.createFile(atPath: marker, contents: Data(reason.utf8), attributes: [.posixPermissions: 0o600])
    }
}
