import Foundation
import MSBCore
import MSBOS
import MSBProtocol

/// The JSON shapes `msb server` and `RemoteBackend` exchange beyond the SDK contract's five
/// methods (see docs/REMOTE.md). Both sides use these types, so they cannot drift apart.
package enum RemoteWire {
    package static let rpcPath = "/api/v1/rpc"
    package static let healthPath = "/api/v1/health"
    /// `GET` with `Upgrade: msb-attach`: after `101` the connection carries the framed
    /// host protocol to the sandbox's supervisor, as a local exec's Unix socket does.
    package static let attachPath = "/api/v1/attach"
    package static let attachProtocol = "msb-attach"
    package static let defaultURL = "http://127.0.0.1:5555"
    package static let defaultNamespace = "default"

    /// JSON-RPC error codes of the envelope itself; those of failed calls come from
    /// `MSBError.Code.edges`, the one error table.
    package enum ErrorCode {
        package static let parse = -32700
        package static let invalidRequest = -32600
        package static let methodNotFound = -32601
        package static let invalidParams = -32602
        package static let internalError = -32603
    }

    // MARK: Sandboxes

    /// One sandbox, as `sandbox.list`/`sandbox.inspect` return it and `msb ls --format json` prints it
    /// (one shape, so a remote `ls` prints what a local one does).
    package struct Sandbox: Codable, Equatable, Sendable {
        package var name: String
        package var namespace: String
        package var image: String
        package var status: String
        package var running: Bool
        package var cpus: Int
        package var memory_mib: Int
        package var created_at: String
        package var started_at: String?
        package var status_reason: String?
        package var accelerator: String?
        /// How the VM started: "template KEY" or "cold boot: why".
        package var boot: String?
        package var envs: [String]?
        package var workdir: String?
        package var user: String?
        package var max_duration_ms: UInt64?
        /// The rest of the config (`msb inspect` shows it all): the image's content digest
        /// (absent for the built-in image), the snapshot it was made from, `--accel` as
        /// asked (`accelerator` is the one in use), and `--cold`.
        package var image_digest: String?
        package var snapshot: String?
        package var accel: String?
        package var cold: Bool?
        /// The guest's hostname when it is not the sandbox's name.
        package var hostname: String?
        package var idle_timeout_ms: UInt64?
        package var depends_on: [String]?
        /// The SDKs' names: the shell `msb shell` opens, the named scripts, the start command.
        package var shell: String?
        package var scripts: [String: String]?
        package var exec: String?
        /// null: no network (only lo). Always written, so a client can tell "none" from an
        /// older server that does not say.
        package var network: Network?
        /// `SOURCE:GUESTDIR[:ro]` of each volume; absent when none. A host path is shown to a
        /// remote user only because that user gave it.
        package var volumes: [String]?

        package init(_ info: SandboxInfo) {
            name = info.name
            namespace = info.namespace
            image = info.config.image
            status = info.status.rawValue
            running = info.status.guestRuns
            cpus = info.config.cpus
            memory_mib = info.config.memoryMiB
            created_at = RemoteWire.iso8601(info.createdAt)
            started_at = info.startedAt.map(RemoteWire.iso8601)
            status_reason = info.statusReason
            accelerator = info.activeAccelerator
            boot = info.boot
            envs = info.config.environment
            workdir = info.config.workingDirectory
            user = info.config.user
            max_duration_ms = info.config.maxDurationMilliseconds
            image_digest = info.config.imageDigest
            snapshot = info.config.snapshot
            accel = info.config.accelerator.rawValue
            cold = info.config.coldBoot
            hostname = info.config.hostname
            idle_timeout_ms = info.config.idleTimeoutMilliseconds
            depends_on = info.config.dependsOn
            shell = info.config.shell
            scripts = info.config.scripts
            exec = info.config.startCommand
            network = info.config.network.map(Network.init)
            volumes = info.config.volumes.flatMap { $0.isEmpty ? nil : $0.map(\.specification) }
        }

        package func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(namespace, forKey: .namespace)
            try c.encode(image, forKey: .image)
            try c.encode(status, forKey: .status)
            try c.encode(running, forKey: .running)
            try c.encode(cpus, forKey: .cpus)
            try c.encode(memory_mib, forKey: .memory_mib)
            try c.encode(created_at, forKey: .created_at)
            try c.encodeIfPresent(started_at, forKey: .started_at)
            try c.encodeIfPresent(status_reason, forKey: .status_reason)
            try c.encodeIfPresent(accelerator, forKey: .accelerator)
            try c.encodeIfPresent(boot, forKey: .boot)
            try c.encodeIfPresent(envs, forKey: .envs)
            try c.encodeIfPresent(workdir, forKey: .workdir)
            try c.encodeIfPresent(user, forKey: .user)
            try c.encodeIfPresent(max_duration_ms, forKey: .max_duration_ms)
            try c.encodeIfPresent(image_digest, forKey: .image_digest)
            try c.encodeIfPresent(snapshot, forKey: .snapshot)
            try c.encodeIfPresent(accel, forKey: .accel)
            try c.encodeIfPresent(cold, forKey: .cold)
            try c.encodeIfPresent(hostname, forKey: .hostname)
            try c.encodeIfPresent(idle_timeout_ms, forKey: .idle_timeout_ms)
            try c.encodeIfPresent(depends_on, forKey: .depends_on)
            try c.encodeIfPresent(shell, forKey: .shell)
            try c.encodeIfPresent(scripts, forKey: .scripts)
            try c.encodeIfPresent(exec, forKey: .exec)
            try c.encode(network, forKey: .network)
            try c.encodeIfPresent(volumes, forKey: .volumes)
        }

        package var info: SandboxInfo {
            var config = SandboxConfig(name: name, image: image, cpus: cpus, memoryMiB: memory_mib,
                                       environment: envs ?? [], workingDirectory: workdir ?? "",
                                       maxDurationMilliseconds: max_duration_ms)
            config.user = user
            config.imageDigest = image_digest
            config.snapshot = snapshot
            config.accelerator = accel.flatMap(AcceleratorChoice.init(rawValue:)) ?? .auto
            config.coldBoot = cold
            config.hostname = hostname
            config.idleTimeoutMilliseconds = idle_timeout_ms
            config.dependsOn = depends_on
            config.shell = shell
            config.scripts = scripts
            config.startCommand = exec
            config.network = network?.policy
            // What cannot be read back is left out rather than trusted.
            config.volumes = volumes.map { $0.compactMap { try? VolumeMount.parse($0) } }
            var info = SandboxInfo(config: config, status: SandboxStatus(rawValue: status) ?? .crashed,
                                   statusReason: status_reason, createdAt: RemoteWire.date(created_at) ?? Date(timeIntervalSince1970: 0),
                                   startedAt: started_at.flatMap(RemoteWire.date), activeAccelerator: accelerator, boot: boot)
            info.namespace = namespace
            return info
        }
    }

    /// One snapshot, as `sandbox.snapshot.*` return it and `msb snapshot ls --format json`
    /// prints it. No host paths: where the snapshot lies is the server's business.
    package struct Snapshot: Codable, Equatable, Sendable {
        package var name: String
        package var namespace: String
        /// The sandbox it was taken from.
        package var source: String
        package var image: String
        package var image_digest: String?
        package var cpus: Int
        package var memory_mib: Int
        package var created_at: String
        package var size_bytes: Int64

        package init(_ info: SnapshotInfo) {
            name = info.name
            namespace = info.namespace
            source = info.source
            image = info.image
            image_digest = info.imageDigest
            cpus = info.cpus
            memory_mib = info.memoryMiB
            created_at = RemoteWire.iso8601(info.createdAt)
            size_bytes = info.sizeBytes
        }

        package var info: SnapshotInfo {
            SnapshotInfo(name: name, namespace: namespace, source: source, image: image, imageDigest: image_digest,
                         cpus: cpus, memoryMiB: memory_mib, createdAt: RemoteWire.date(created_at) ?? Date(timeIntervalSince1970: 0),
                         sizeBytes: size_bytes)
        }
    }

    /// One sandbox's metrics: the SDK contract's keys (`sandbox.metrics.get`), plus with
    /// `detail` what `msb metrics --format json` shows besides. Absent figures are explicit
    /// nulls, as the SDKs expect.
    package struct Metrics: Codable, Equatable, Sendable {
        package var name: String
        package var namespace: String
        package var running: Bool
        package var cpu_usage: Double?
        package var memory_usage: Int?
        package var disk_usage: Int?
        // Detail, left out of the contract's shape.
        package var status: String?
        package var memory_limit: Int?
        package var uptime_seconds: Double?
        /// Bytes the guest's network interface received and sent since boot.
        package var network_rx_bytes: Int?
        package var network_tx_bytes: Int?

        package init(_ m: SandboxMetrics, detail: Bool) {
            name = m.name
            namespace = m.namespace
            running = m.running
            cpu_usage = m.cpuPercent
            memory_usage = m.memoryUsedMiB
            disk_usage = m.diskUsedBytes
            if detail {
                status = m.status.rawValue
                memory_limit = m.memoryLimitMiB
                uptime_seconds = m.uptimeSeconds
                network_rx_bytes = m.networkReceivedBytes
                network_tx_bytes = m.networkSentBytes
            }
        }

        enum CodingKeys: String, CodingKey {
            case name, namespace, running, status, cpu_usage, memory_usage, memory_limit, disk_usage, uptime_seconds
            case network_rx_bytes, network_tx_bytes
        }

        package func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(namespace, forKey: .namespace)
            try c.encode(running, forKey: .running)
            try c.encode(cpu_usage, forKey: .cpu_usage)
            try c.encode(memory_usage, forKey: .memory_usage)
            try c.encode(disk_usage, forKey: .disk_usage)
            if let memory_limit {  // the detail keys come together
                try c.encode(status, forKey: .status)
                try c.encode(memory_limit, forKey: .memory_limit)
                try c.encode(uptime_seconds, forKey: .uptime_seconds)
                try c.encode(network_rx_bytes, forKey: .network_rx_bytes)
                try c.encode(network_tx_bytes, forKey: .network_tx_bytes)
            }
        }

        package var metrics: SandboxMetrics {
            var m = SandboxMetrics(name: name, status: status.flatMap(SandboxStatus.init(rawValue:)) ?? (running ? .running : .stopped),
                                   memoryLimitMiB: memory_limit ?? 0)
            m.namespace = namespace
            m.cpuPercent = cpu_usage
            m.memoryUsedMiB = memory_usage
            m.diskUsedBytes = disk_usage
            m.uptimeSeconds = uptime_seconds
            m.networkReceivedBytes = network_rx_bytes
            m.networkSentBytes = network_tx_bytes
            return m
        }
    }

    // MARK: Encoding helpers

    package static func iso8601(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    package static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
