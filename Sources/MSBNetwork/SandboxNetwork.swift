import Glibc
import MSBCore
import MSBOS

/// A sandbox's network on the host: its own passt process (user-mode networking: the
/// guest's frames become socket calls of that process), connected to QEMU by a socket pair,
/// and the nftables table that filters what that process sends. Started by the supervisor
/// before QEMU, owned and reaped by it; passt dies with it (death signal) and the table
/// with its netlink socket.
package final class SandboxNetwork {
    /// QEMU's end of the connection to passt: passed to QEMU, then closed here (`releaseVMMEnd`)
    /// so that passt sees the connection end when QEMU does.
    package private(set) var vmmDescriptor: Int32
    package let passt: ChildProcess
    /// Holds the filter table: it lives exactly as long as this session.
    private let filter: NFTablesSession?
    private var reaped: WaitStatus?

    /// Debian's passt (0.0~git20230309): QEMU 7.2's `-netdev stream` is its protocol.
    package static let passtPath = "/usr/bin/passt"

    /// Everything one sandbox's network needs from the supervisor.
    package struct Launch {
        package var policy: NetworkPolicy
        /// passt's own uid and gid (the filter matches this uid); nil when msb is not root,
        /// and then only an unrestricted network can run (nothing could filter it).
        package var identity: (uid: Int32, gid: Int32)?
        /// The nftables table's name, unique per sandbox.
        package var tableName: String
        /// The table's comment: whose it is.
        package var tableComment = "msb sandbox"
        /// passt's messages (it is started `--quiet`: only warnings and errors).
        package var logPath: String
        /// The host's resolv.conf (passt forwards the guest's DNS to its first resolver).
        package var resolvConfPath = "/etc/resolv.conf"

        package init(policy: NetworkPolicy, identity: (uid: Int32, gid: Int32)?, tableName: String, logPath: String) {
            self.policy = policy
            self.identity = identity
            self.tableName = tableName
            self.logPath = logPath
        }
    }

    private init(vmmDescriptor: Int32, passt: ChildProcess, filter: NFTablesSession?) {
        self.vmmDescriptor = vmmDescriptor
        self.passt = passt
        self.filter = filter
    }

    deinit {
        if vmmDescriptor >= 0 { close(vmmDescriptor) }
    }

    /// Checks the ports, installs the filter, starts passt. Nothing is left behind on failure.
    package static func start(_ launch: Launch) throws(MSBError) -> SandboxNetwork {
        let policy = launch.policy
        try HostPorts.checkAvailable(policy.publishedPorts)
        guard access(passtPath, X_OK) == 0 else {
            throw MSBError(.unsupported, "passt is not installed (\(passtPath)): sandboxes need it for their network",
                           hint: "install the passt package (scripts/setup.sh does), or use --no-net")
        }
        var filter: NFTablesSession?
        if !policy.unrestricted {
            guard let identity = launch.identity else {
                throw MSBError(.unsupported, "msb cannot filter this sandbox's network: it does not run as root",
                               hint: "run msb as root, or use --no-net, or --net-unrestricted to run without a filter")
            }
            let resolvers = (try? String(contentsOfFile: launch.resolvConfPath, encoding: .utf8)).map(EgressFilter.resolvers(inResolvConf:)) ?? []
            let session = try NFTablesSession()
            try session.apply(EgressFilter(tableName: launch.tableName, uid: UInt32(bitPattern: identity.uid), policy: policy,
                                           resolvers: resolvers, comment: launch.tableComment).ruleset)
            filter = session
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw MSBError(.internalError, "cannot create the network connection: \(String(cString: strerror(errno)))")
        }
        defer { close(pair[1]) }
        let logFd = open(launch.logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        defer { if logFd >= 0 { close(logFd) } }
        var spec = SpawnSpec(passtPath, arguments: passtArguments(policy, descriptor: 3), environment: ["PATH=/usr/bin:/bin"])
        spec.inheritedDescriptors = [pair[1]]
        spec.standardError = logFd >= 0 ? logFd : nil
        spec.workingDirectory = "/"
        spec.dieWithParent = true
        spec.noNewPrivileges = true
        if let identity = launch.identity { spec.credentials = identity }
        do {
            let passt = try ChildProcess.spawn(spec)
            return SandboxNetwork(vmmDescriptor: pair[0], passt: passt, filter: filter)
        } catch {
            close(pair[0])
            throw MSBError(.unsupported, "cannot start passt: \(error.reason)")
        }
    }

    /// passt's command line: foreground, quiet, the connection on `descriptor`, the fixed
    /// guest addressing (GuestAddressing), and exactly the published ports (`none` otherwise:
    /// passt would forward UDP ports matching TCP ones by itself).
    package static func passtArguments(_ policy: NetworkPolicy, descriptor: Int32) -> [String] {
        var args = [
            passtPath, "--foreground", "--quiet", "--fd", "\(descriptor)",
            "--address", GuestAddressing.address, "--netmask", "\(GuestAddressing.prefixLength)",
            "--gateway", GuestAddressing.gateway, "--dns-forward", GuestAddressing.nameserver,
            "--mtu", "\(GuestAddressing.mtu)",
        ]
        for transport in TransportProtocol.allCases {
            let specs = policy.publishedPorts.filter { $0.transport == transport }.map { port in
                "\(port.hostAddress)/\(PublishedPort.range(port.hostPorts)):\(PublishedPort.range(port.guestPorts))"
            }
            args += [transport == .tcp ? "--tcp-ports" : "--udp-ports", specs.isEmpty ? "none" : specs.joined(separator: ",")]
        }
        return args
    }

    /// Once QEMU holds its end: ours goes, so the connection ends with QEMU.
    package func releaseVMMEnd() {
        if vmmDescriptor >= 0 { close(vmmDescriptor) }
        vmmDescriptor = -1
    }

    /// passt's status if it has ended; never blocks.
    package func pollExit() -> WaitStatus? {
        if let reaped { return reaped }
        reaped = passt.poll()
        return reaped
    }

    /// SIGTERM, then SIGKILL after `graceSeconds`; reaped either way.
    package func terminate(graceSeconds: Double) {
        guard pollExit() == nil else { return }
        reaped = passt.terminate(graceSeconds: graceSeconds)
    }

    /// The sandbox's MAC address: locally administered, from a hash of its state directory,
    /// so stable across its starts.
    package static func macAddress(forSandboxDirectory directory: String) -> [UInt8] {
        let hash = directoryHash(directory)
        return [0x02] + (0..<5).map { UInt8(truncatingIfNeeded: hash >> (8 * $0)) }
    }

    /// `02:…` for QEMU's command line.
    package static func macText(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    /// The nftables table of the sandbox in `directory`: 16 hex digits of a hash of it.
    package static func tableName(forSandboxDirectory directory: String) -> String {
        let hex = String(directoryHash(directory), radix: 16)
        return "msb_" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// 64-bit FNV-1a of a sandbox's directory: what its MAC address and table name derive from.
    private static func directoryHash(_ directory: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in directory.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}
