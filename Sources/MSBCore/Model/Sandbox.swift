import Foundation
import MSBOS

/// What a sandbox is made of; fixed at create time and reused by every start.
public struct SandboxConfig: Codable, Equatable, Sendable {
    public var name: String
    public var image: String
    public var cpus: Int
    public var memoryMiB: Int
    /// `KEY=VALUE` defaults for every exec.
    public var environment: [String]
    /// Default working directory for exec; empty means `/`.
    public var workingDirectory: String
    /// The supervisor stops the sandbox after this long; nil means never.
    public var maxDurationMilliseconds: UInt64?
    public var accelerator: AcceleratorChoice
    /// Who execs run as by default (`name`, `uid` or `uid:gid`); nil means root.
    public var user: String?
    /// The content digest of the disk image the sandbox was made from (`sha256:…`): it boots
    /// only on that image, whatever its name points at later. Nil for the built-in image.
    public var imageDigest: String?
    /// Always boot the kernel instead of resuming a template (`--cold`); nil means false.
    public var coldBoot: Bool?
    /// The named snapshot the sandbox was made from (`create --from`): its first start
    /// resumes that snapshot's memory and disk; image, cpus and memory are the snapshot's.
    public var snapshot: String?
    /// The sandbox's network; nil means none at all, only `lo` (`--no-net`, and sandboxes
    /// made before msb had networking).
    public var network: NetworkPolicy?
    /// Directories shared into the guest (`-v`); nil means none. A sandbox with volumes
    /// always boots cold: QEMU 7.2 cannot save a virtio-fs device.
    public var volumes: [VolumeMount]?
    /// The guest's hostname (`--hostname`); nil means the sandbox's name.
    public var hostname: String?
    /// The supervisor stops the sandbox once no client has been served for this long
    /// (`--idle-timeout`, see Supervisor+Idle); nil means never.
    public var idleTimeoutMilliseconds: UInt64?
    /// Sandboxes of the same namespace started before this one (`--depends-on`); nil means none.
    public var dependsOn: [String]?
    /// The shell `msb shell` opens (`--shell`, `shell`): an absolute guest path; nil means `/bin/sh`.
    public var shell: String?
    /// Named commands (`--script NAME=CMD`, `scripts`): `msb exec NAME --script NAME` runs
    /// one, and each start writes them to `/.msb/scripts/NAME` in the guest; nil means none.
    public var scripts: [String: String]?
    /// The sandbox's main process (`--start-command`, `exec`): `/bin/sh -c` of it is started
    /// in the background at every start, its output kept in the sandbox's log (`msb logs`);
    /// nil means none.
    public var startCommand: String?

    public init(
        name: String, image: String = "base", cpus: Int = 1, memoryMiB: Int = 512,
        environment: [String] = [], workingDirectory: String = "", maxDurationMilliseconds: UInt64? = nil,
        accelerator: AcceleratorChoice = .auto
    ) {
        self.name = name
        self.image = image
        self.cpus = cpus
        self.memoryMiB = memoryMiB
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.maxDurationMilliseconds = maxDurationMilliseconds
        self.accelerator = accelerator
    }
}

public enum SandboxStatus: String, Codable, Sendable, CaseIterable {
    /// `draining`: running, but taking no new commands; it stops once the running ones end (`msb drain`).
    case created, starting, running, draining, paused, stopping, stopped, crashed

    /// A supervisor process should exist in these states.
    package var expectsSupervisor: Bool {
        self == .starting || self == .running || self == .draining || self == .paused || self == .stopping
    }

    /// The guest runs and can be measured (its vCPUs are not stopped, it is not going away).
    package var guestRuns: Bool { self == .running || self == .draining }
}

/// What `ls` and `inspect` show: the config plus the live state.
public struct SandboxInfo: Equatable, Sendable {
    public var config: SandboxConfig
    /// The server namespace the sandbox lives in; `default` on a local host.
    public var namespace = "default"
    public var status: SandboxStatus
    /// Why the sandbox last stopped or crashed, when known.
    public var statusReason: String?
    public var createdAt: Date
    public var startedAt: Date?
    /// The accelerator the running VM uses (kvm or tcg).
    public var activeAccelerator: String?
    /// How the running VM started: "template …" or "cold boot: why".
    public var boot: String?

    package init(config: SandboxConfig, namespace: String = "default", status: SandboxStatus, statusReason: String? = nil,
                 createdAt: Date, startedAt: Date? = nil, activeAccelerator: String? = nil, boot: String? = nil) {
        self.config = config
        self.namespace = namespace
        self.status = status
        self.statusReason = statusReason
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.activeAccelerator = activeAccelerator
        self.boot = boot
    }

    public var name: String { config.name }
}
