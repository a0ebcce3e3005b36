import Foundation
import MSBClient
import MSBCore

/// The server's sandboxes: one `LocalBackend` per namespace, each with its own database and
/// sandbox directories under `$MSB_HOME/namespaces/DIR` (`NamespaceDirectory`; images and
/// the guest are shared), and the server-wide limits on what runs at once.
package final class SandboxHost: @unchecked Sendable {
    package let paths: MSBPaths
    package let limits: ServerLimits
    /// Guards `reservations`: boots that passed the limit check but are not running yet.
    private let lock = NSLock()
    private var reservations: [String: Usage] = [:]
    /// Guards `snapshotsInProgress`: snapshot creates per namespace that passed the count check.
    private let snapshotLock = NSLock()
    private var snapshotsInProgress: [String: Int] = [:]
    /// JSON-RPC calls running per namespace.
    package let calls: NamespaceSlots
    /// `image.pull` calls running per namespace.
    package let pulls: NamespaceSlots
    /// Images `sandbox.start` is pulling or building on first use.
    package let imageFetches = ImageFetches()
    /// What `sandboxes(_:)` hands out instead of the namespace's `LocalBackend`: the seam
    /// where unit tests put a fake, so the SDK methods run end to end without a VM.
    private let makeSandboxes: (@Sendable (String) -> any SandboxBackend)?

    package struct Usage: Sendable, Equatable {
        package var sandboxes = 0
        package var memoryMiB = 0
        package var cpus = 0

        static func + (a: Usage, b: Usage) -> Usage {
            Usage(sandboxes: a.sandboxes + b.sandboxes, memoryMiB: a.memoryMiB + b.memoryMiB, cpus: a.cpus + b.cpus)
        }
    }

    package init(paths: MSBPaths, limits: ServerLimits, sandboxes: (@Sendable (String) -> any SandboxBackend)? = nil) {
        self.paths = paths
        self.limits = limits
        makeSandboxes = sandboxes
        calls = NamespaceSlots(limit: limits.maxCallsPerNamespace, what: "calls", option: "--max-calls-per-namespace")
        pulls = NamespaceSlots(limit: limits.maxPullsPerNamespace, what: "image pulls", option: "--max-pulls-per-namespace")
    }

    /// A backend for one namespace; cheap, and made per request so requests share no state.
    /// Its state directory is made (0700) when its database is first opened.
    package func backend(_ namespace: String) throws(MSBError) -> LocalBackend {
        try InputParsing.validateNamespace(namespace)
        try NamespaceDirectory.claim(namespace, in: paths.namespacesDirectory)
        return LocalBackend(paths: paths.namespaced(NamespaceDirectory.name(for: namespace)), namespace: namespace)
    }

    /// A namespace's sandboxes as the SDK's exec, code and metrics calls reach them: its
    /// `LocalBackend`, or the fake a test gave `init`.
    package func sandboxes(_ namespace: String) throws(MSBError) -> any SandboxBackend {
        guard let makeSandboxes else { return try backend(namespace) }
        try InputParsing.validateNamespace(namespace)
        return makeSandboxes(namespace)
    }

    /// Image calls that act for every namespace (build, remove, prune): images are shared.
    package var imageAdministration: LocalBackend { LocalBackend(paths: paths) }

    /// Namespaces that have state on disk.
    package func namespaces() -> [String] {
        let root = paths.namespacesDirectory
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return entries.compactMap { NamespaceDirectory.namespace(ofDirectory: $0, in: root) }.sorted()
    }

    /// Sandboxes of every namespace.
    package func allSandboxes() throws(MSBError) -> [SandboxInfo] {
        var all: [SandboxInfo] = []
        for namespace in namespaces() { all += try backend(namespace).list() }
        return all
    }

    /// (namespace/sandbox, image digest) of every namespace: images are shared by all of them.
    package func imageUsers() throws(MSBError) -> [(String, String)] {
        var users: [(String, String)] = []
        for namespace in namespaces() { users += try backend(namespace).imageUsers().map { ("\(namespace)/\($0.0)", $0.1) } }
        return users
    }

    /// What the running and booting sandboxes use.
    package func usage() throws(MSBError) -> Usage {
        var usage = Usage()
        for info in try allSandboxes() where info.status.guestRuns || info.status == .starting {
            usage = usage + Usage(sandboxes: 1, memoryMiB: info.config.memoryMiB, cpus: info.config.cpus)
        }
        return usage
    }

    /// Runs `boot` (a create or start of `config`) only if the limits leave room for it,
    /// holding its share until it is done so that concurrent boots cannot overshoot.
    package func withCapacity<T>(for config: SandboxConfig, namespace: String,
                                 _ boot: () throws(MSBError) -> T) throws(MSBError) -> T {
        let key = namespace + "/" + config.name
        let wanted = Usage(sandboxes: 1, memoryMiB: config.memoryMiB, cpus: config.cpus)
        lock.lock()
        let refusal: MSBError?
        do throws(MSBError) {
            let current = reservations.values.reduce(try usage(), +)
            let running = try backend(namespace).list().count { $0.status.guestRuns || $0.status == .starting }
            let reserved = reservations.keys.count { $0.hasPrefix(namespace + "/") }
            refusal = check(current + wanted, wanted: wanted) ?? checkNamespace(namespace, running: running + reserved + 1)
        } catch {
            lock.unlock()
            throw error
        }
        if refusal == nil { reservations[key] = wanted }
        lock.unlock()
        if let refusal { throw refusal }
        defer {
            lock.lock()
            reservations[key] = nil
            lock.unlock()
        }
        return try boot()
    }

    /// Runs `create` (a snapshot create in `namespace`) only if the namespace stays within its
    /// snapshot limit. `existing` counts the namespace's snapshots; creates still running count
    /// too, so concurrent creates cannot overshoot (a finished one is briefly counted twice).
    package func withSnapshotRoom<T>(namespace: String, existing: () throws(MSBError) -> Int,
                                     _ create: () throws(MSBError) -> T) throws(MSBError) -> T {
        snapshotLock.lock()
        let count: Int
        do throws(MSBError) {
            count = try existing() + snapshotsInProgress[namespace, default: 0]
        } catch {
            snapshotLock.unlock()
            throw error
        }
        let fits = count < limits.maxSnapshotsPerNamespace
        if fits { snapshotsInProgress[namespace, default: 0] += 1 }
        snapshotLock.unlock()
        guard fits else {
            throw MSBError(.limitExceeded, "namespace limit reached: at most \(limits.maxSnapshotsPerNamespace) snapshots may be kept "
                           + "in namespace \(namespace)", hint: "remove a snapshot first ('msb snapshot rm')")
        }
        defer {
            snapshotLock.lock()
            snapshotsInProgress[namespace, default: 1] -= 1
            if snapshotsInProgress[namespace] == 0 { snapshotsInProgress[namespace] = nil }
            snapshotLock.unlock()
        }
        return try create()
    }

    private func checkNamespace(_ namespace: String, running: Int) -> MSBError? {
        guard running > limits.maxSandboxesPerNamespace else { return nil }
        return MSBError(.limitExceeded, "namespace limit reached: at most \(limits.maxSandboxesPerNamespace) sandboxes may run at once "
                        + "in namespace \(namespace)", hint: "stop a sandbox first")
    }

    private func check(_ total: Usage, wanted: Usage) -> MSBError? {
        if total.sandboxes > limits.maxRunningSandboxes {
            return MSBError(.limitExceeded, "server limit reached: at most \(limits.maxRunningSandboxes) sandboxes may run at once",
                            hint: "stop a sandbox first")
        }
        if total.memoryMiB > limits.maxTotalMemoryMiB {
            return MSBError(.limitExceeded, "server limit reached: \(wanted.memoryMiB) MiB more would exceed the \(limits.maxTotalMemoryMiB) MiB "
                            + "of memory allowed to running sandboxes (\(total.memoryMiB - wanted.memoryMiB) MiB in use)",
                            hint: "stop a sandbox or ask for less memory")
        }
        if total.cpus > limits.maxTotalCPUs {
            return MSBError(.limitExceeded, "server limit reached: \(wanted.cpus) more cpus would exceed the \(limits.maxTotalCPUs) "
                            + "allowed to running sandboxes (\(total.cpus - wanted.cpus) in use)",
                            hint: "stop a sandbox or ask for fewer cpus")
        }
        return nil
    }
}
