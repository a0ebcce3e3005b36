/// Messages exchanged between host and guest agent (and, unchanged, between CLI
/// clients and the per-sandbox supervisor, which rewrites request ids).
///
/// Every message travels in an `Envelope` whose `id` names the request (an exec
/// session, a shutdown) it belongs to, so several execs share one connection.
package enum Message: Equatable, Sendable {
    /// Host -> guest: sent repeatedly until answered, since bytes sent before the guest
    /// opens its port are dropped.
    case hello(Hello)
    case helloReply(Hello)
    case exec(ExecRequest)
    case started(pid: Int32)
    case stdin([UInt8])
    case stdinClose
    case stdout([UInt8])
    case stderr([UInt8])
    case signal(Int32)
    case resize(rows: UInt16, cols: UInt16)
    case exited(ExitStatus)
    case execFailed(ExecFailure)
    /// Host -> guest: sync file systems and power off.
    case shutdown
    case shutdownAck
    /// Either way: a request could not be served (malformed, unknown id).
    case error(String)
    /// CLI -> supervisor: stop the sandbox (graceful unless force).
    case stopSandbox(force: Bool)
    /// Supervisor -> CLI: the sandbox has stopped; the text says how.
    case stopped(String)
    /// CLI -> supervisor: stop relaying this exec but let the process run on.
    case detach
    /// Host -> guest: report resource usage.
    case statsRequest
    /// Guest -> host (the supervisor adds the CPU figure it measures on the host).
    case stats(GuestStats)
    /// CLI -> supervisor: evaluate code in the sandbox's long-lived interpreter for a language.
    case replRun(language: String, code: String)
    /// Supervisor -> CLI: the evaluation ended (its output came as stdout/stderr before).
    case replDone(ReplOutcome)
    /// Guest -> host, every `Heartbeat.intervalSeconds` once greeted, whatever else it is
    /// doing (even while it stops reading the port under backpressure): the agent lives.
    case heartbeat
    /// Host -> guest, once per host session right after hello: who the guest is now
    /// (hostname, clock, fresh entropy, its root disk). After a restore from a template or
    /// snapshot this is what makes two guests from one memory image different.
    case setup(GuestSetup)
    /// Guest -> host: the setup was applied; a non-empty text says what failed.
    case setupDone(String)
    /// CLI -> supervisor: stop (true) or continue (false) the guest's vCPUs.
    case setPaused(Bool)
    /// Supervisor -> CLI: the vCPUs are now stopped (true) or running (false).
    case pausedState(Bool)
    /// CLI -> supervisor: save the whole running guest (memory, devices, disk) into this
    /// empty work directory of the sandbox's snapshot store (`msb snapshot create`).
    case saveSnapshot(directory: String)
    /// Supervisor -> CLI: the snapshot was saved ("") or why it was not.
    case snapshotSaved(String)
    /// Host -> guest: one file operation (FileMessages.swift), passed through by the supervisor.
    case fileRequest(FileRequest)
    /// Guest -> host: its answer.
    case fileReply(FileReply)
    /// CLI -> supervisor: take no new commands, stop once the running ones have ended, or
    /// after `timeoutMilliseconds` (0: no limit) with whatever still runs (`msb drain`).
    case drainSandbox(timeoutMilliseconds: UInt64)
    /// Supervisor -> CLI: the sandbox is draining now.
    case drainStarted

    var typeCode: UInt8 {
        switch self {
        case .hello: 1
        case .helloReply: 2
        case .exec: 3
        case .started: 4
        case .stdin: 5
        case .stdinClose: 6
        case .stdout: 7
        case .stderr: 8
        case .signal: 9
        case .resize: 10
        case .exited: 11
        case .execFailed: 12
        case .shutdown: 13
        case .shutdownAck: 14
        case .error: 15
        case .stopSandbox: 16
        case .stopped: 17
        case .detach: 18
        case .statsRequest: 19
        case .stats: 20
        case .replRun: 21
        case .replDone: 22
        case .heartbeat: 23
        case .setup: 24
        case .setupDone: 25
        case .setPaused: 26
        case .pausedState: 27
        case .saveSnapshot: 28
        case .snapshotSaved: 29
        case .fileRequest: 30
        case .fileReply: 31
        case .drainSandbox: 32
        case .drainStarted: 33
        }
    }
}

package struct Hello: Equatable, Sendable {
    /// 2: the agent sends heartbeats. 3: the host sends `setup` (the agent mounts the
    /// root disk itself, so a template can be saved before any disk is in use). 4: `setup`
    /// may carry the network interface's configuration. 5: `setup` carries the virtio-fs
    /// volumes to mount. 6: `fileRequest`/`fileReply` (the Files API).
    package static let currentVersion: UInt32 = 6
    package var version: UInt32
    package var software: String

    package init(version: UInt32 = Hello.currentVersion, software: String) {
        self.version = version
        self.software = software
    }
}

/// The guest's identity, given by the host at each start (cold boot or restore).
package struct GuestSetup: Equatable, Sendable {
    package var hostname: String
    /// The host's wall clock when the message was built (Unix time, nanoseconds).
    package var wallClockNanoseconds: UInt64
    /// Host randomness mixed into the guest's pool, which is then reseeded.
    package var entropy: [UInt8]
    /// The block device to mount as the root ("" keeps the initramfs as the root).
    package var rootDevice: String
    /// Whether the guest resumed from a saved memory image rather than booting.
    package var restored: Bool
    /// The network interface to bring up before the first command; nil leaves only `lo`.
    package var network: GuestNetwork?
    /// virtio-fs volumes to mount before the first command, after the root switch.
    package var volumes: [GuestVolume] = []

    package init(hostname: String, wallClockNanoseconds: UInt64, entropy: [UInt8], rootDevice: String, restored: Bool,
                 network: GuestNetwork? = nil, volumes: [GuestVolume] = []) {
        self.hostname = hostname
        self.wallClockNanoseconds = wallClockNanoseconds
        self.entropy = entropy
        self.rootDevice = rootDevice
        self.restored = restored
        self.network = network
        self.volumes = volumes
    }
}

/// One virtio-fs device the guest mounts: the device's tag, where, and read-only or not
/// (the host enforces read-only; the guest's flag only makes writes fail early and clearly).
package struct GuestVolume: Equatable, Sendable {
    /// At most this many in one setup.
    package static let maximumCount = 16
    package var tag: String
    package var guestPath: String
    package var readOnly: Bool

    package init(tag: String, guestPath: String, readOnly: Bool) {
        self.tag = tag
        self.guestPath = guestPath
        self.readOnly = readOnly
    }
}

/// How the guest configures its one network interface (static: no DHCP round trip at
/// start, and the same steps after a restore, where the MAC address is what changes).
package struct GuestNetwork: Equatable, Sendable {
    /// The MAC address a template's guest is saved with. The guest sends no frame under it
    /// (IPv6 off, no announcements), so a sandbox's passt has never learned it and a
    /// sandbox restored from a template need not announce its own.
    package static let templateMACAddress: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]

    package var interface: String
    /// 6 bytes, locally administered: the sandbox's own.
    package var macAddress: [UInt8]
    /// IPv4, 4 bytes each.
    package var address: [UInt8]
    package var prefixLength: UInt8
    package var gateway: [UInt8]
    package var nameserver: [UInt8]
    package var mtu: UInt32
    /// Lines added to the guest's /etc/hosts (`10.0.2.2 host.msb.internal`).
    package var hostsEntries: [String]

    package init(interface: String, macAddress: [UInt8], address: [UInt8], prefixLength: UInt8, gateway: [UInt8],
                 nameserver: [UInt8], mtu: UInt32, hostsEntries: [String]) {
        self.interface = interface
        self.macAddress = macAddress
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.nameserver = nameserver
        self.mtu = mtu
        self.hostsEntries = hostsEntries
    }
}

/// How often the agent says it lives, and how long the supervisor waits before it takes
/// an agent that said nothing as not answering.
package enum Heartbeat {
    package static let intervalSeconds = 2.0
    package static let timeoutSeconds = 20.0
}

package struct ExecRequest: Equatable, Sendable {
    package var argv: [String]
    package var environment: [String]
    package var workingDirectory: String
    /// When false the agent connects the process's stdin to /dev/null.
    package var attachStdin: Bool
    package var tty: Bool
    package var rows: UInt16
    package var cols: UInt16
    /// 0 means no timeout; the agent kills the process group when it passes.
    package var timeoutMilliseconds: UInt64
    /// `name`, `uid` or `uid:gid` as in the image config's User; empty means root.
    package var user: String

    package init(
        argv: [String], environment: [String] = [], workingDirectory: String = "",
        attachStdin: Bool = false, tty: Bool = false, rows: UInt16 = 24, cols: UInt16 = 80,
        timeoutMilliseconds: UInt64 = 0, user: String = ""
    ) {
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.attachStdin = attachStdin
        self.tty = tty
        self.rows = rows
        self.cols = cols
        self.timeoutMilliseconds = timeoutMilliseconds
        self.user = user
    }
}

package struct ExitStatus: Equatable, Sendable {
    /// Exit code when the process exited; 0 when it was killed by a signal.
    package var code: Int32
    /// Signal number that killed the process, or 0.
    package var signal: Int32
    package var timedOut: Bool

    package init(code: Int32, signal: Int32 = 0, timedOut: Bool = false) {
        self.code = code
        self.signal = signal
        self.timedOut = timedOut
    }
}

package struct ReplOutcome: Equatable, Sendable {
    /// `success`, `exception` (the code raised) or `error` (the interpreter died or timed out).
    package var status: String
    package var message: String

    package init(status: String, message: String = "") {
        self.status = status
        self.message = message
    }
}

package struct GuestStats: Equatable, Sendable {
    package var memoryTotalKiB: UInt64
    package var memoryAvailableKiB: UInt64
    /// Bytes written to the sandbox's writable file systems since boot.
    package var diskUsedBytes: UInt64
    package var uptimeMilliseconds: UInt64
    /// CPU use over the last sampling interval, in thousandths of a percent of one CPU;
    /// measured on the host by the supervisor (the agent sends 0).
    package var cpuPercentMilli: UInt64
    /// Bytes the guest's network interface received and sent since boot (0 without one).
    /// The guest's own count: informational, like the memory figures.
    package var networkReceivedBytes: UInt64
    package var networkSentBytes: UInt64

    package init(memoryTotalKiB: UInt64 = 0, memoryAvailableKiB: UInt64 = 0, diskUsedBytes: UInt64 = 0,
                 uptimeMilliseconds: UInt64 = 0, cpuPercentMilli: UInt64 = 0, networkReceivedBytes: UInt64 = 0,
                 networkSentBytes: UInt64 = 0) {
        self.memoryTotalKiB = memoryTotalKiB
        self.memoryAvailableKiB = memoryAvailableKiB
        self.diskUsedBytes = diskUsedBytes
        self.uptimeMilliseconds = uptimeMilliseconds
        self.cpuPercentMilli = cpuPercentMilli
        self.networkReceivedBytes = networkReceivedBytes
        self.networkSentBytes = networkSentBytes
    }
}

package struct ExecFailure: Error, Equatable, Sendable {
    package enum Kind: UInt8, Sendable {
        case notFound = 1
        case notExecutable = 2
        case failed = 3
    }
    package var kind: Kind
    package var message: String

    package init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
}

package struct Envelope: Equatable, Sendable {
    package var id: UInt32
    package var message: Message

    package init(id: UInt32, _ message: Message) {
        self.id = id
        self.message = message
    }
}
