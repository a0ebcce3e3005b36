import Foundation
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
    package let passt: OwnedChild
    /// Holds the filter table: it lives exactly as long as this session.
    private let filter: NFTablesSession?

    /// Debian's passt (0.0~git20230309): QEMU 7.2's `-netdev stream` is its protocol.
    package static let passtPath = "/usr/bin/passt"

    /// Everything one sandbox's network needs from the supervisor.
    package struct Launch: Sendable {
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
        self.passt = OwnedChild(passt)
        self.filter = filter
    }

    deinit {
        if vmmDescriptor >= 0 { close(vmmDescriptor) }
    }

    /// Starts the network alongside QEMU. Here: the checks (a taken port fails the start
    /// before QEMU runs) and the connection (QEMU gets its end now). On a thread of its own:
    /// the filter; `PendingStart.wait` joins it, then starts passt. The guest may run
    /// meanwhile: its frames wait in the connection until passt reads them, and passt runs
    /// only once its filter is in place. First, the filter (libnftables) added 7–30 ms to
    /// every start; beside QEMU's restore it adds nothing.
    package static func begin(_ launch: Launch) throws(MSBError) -> PendingStart {
        try HostPorts.checkAvailable(launch.policy.publishedPorts)
        guard access(passtPath, X_OK) == 0 else {
            throw MSBError(.unsupported, "passt is not installed (\(passtPath)): sandboxes need it for their network",
                           hint: "install the passt package (scripts/setup.sh does), or use --no-net")
        }
        var filterOwner: UInt32?
        if !launch.policy.unrestricted {
            guard let identity = launch.identity else {
                throw MSBError(.unsupported, "msb cannot filter this sandbox's network: it does not run as root",
                               hint: "run msb as root, or use --no-net, or --net-unrestricted to run without a filter")
            }
            filterOwner = UInt32(bitPattern: identity.uid)
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw MSBError(.internalError, "cannot create the network connection: \(String(cString: strerror(errno)))")
        }
        let pending = PendingStart(launch: launch, vmmDescriptor: pair[0], passtDescriptor: pair[1])
        if let filterOwner {
            Thread.detachNewThread {
                pending.filterInstalled(Result { () throws(MSBError) in
                    let resolvers = (try? String(contentsOfFile: launch.resolvConfPath, encoding: .utf8))
                        .map(EgressFilter.resolvers(inResolvConf:)) ?? []
                    let session = try NFTablesSession()
                    try session.apply(EgressFilter(tableName: launch.tableName, uid: filterOwner, policy: launch.policy,
                                                   resolvers: resolvers, comment: launch.tableComment).ruleset)
                    return session
                })
            }
        } else {
            pending.filterInstalled(.success(nil))
        }
        return pending
    }

    /// The network `begin` started: its filter being installed, passt not yet running.
    package final class PendingStart: @unchecked Sendable {
        /// QEMU's end of the connection; `wait` hands it to the network (or closes it).
        package let vmmDescriptor: Int32
        private let passtDescriptor: Int32
        private let launch: Launch
        private let installed = DispatchSemaphore(value: 0)
        /// Written once by the filter's thread before `installed` is signalled.
        private var filter: Result<NFTablesSession?, MSBError>?

        fileprivate init(launch: Launch, vmmDescriptor: Int32, passtDescriptor: Int32) {
            self.launch = launch
            self.vmmDescriptor = vmmDescriptor
            self.passtDescriptor = passtDescriptor
        }

        fileprivate func filterInstalled(_ outcome: Result<NFTablesSession?, MSBError>) {
            filter = outcome
            installed.signal()
        }

        /// Waits for the filter, then starts passt; call once. Bounded: installing the
        /// filter is one netlink transaction, which the kernel answers or fails. passt is
        /// spawned here, not on the filter's thread: its death signal follows the thread
        /// that spawned it, and that thread ends.
        package func wait() throws(MSBError) -> SandboxNetwork {
            installed.wait()
            defer { close(passtDescriptor) }
            do throws(MSBError) {
                guard let filter else { throw MSBError(.internalError, "the network's filter thread ended without an outcome") }
                let session = try filter.get()
                return SandboxNetwork(vmmDescriptor: vmmDescriptor, passt: try startPasst(launch, descriptor: passtDescriptor),
                                      filter: session)
            } catch {
                close(vmmDescriptor)
                throw error
            }
        }
    }

    /// passt, as its own user, on `descriptor` (its end of the connection to QEMU).
    private static func startPasst(_ launch: Launch, descriptor: Int32) throws(MSBError) -> ChildProcess {
        let logFd = open(launch.logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        defer { if logFd >= 0 { close(logFd) } }
        var spec = SpawnSpec(passtPath, arguments: passtArguments(launch.policy, descriptor: 3), environment: ["PATH=/usr/bin:/bin"])
        spec.inheritedDescriptors = [descriptor]
        spec.standardError = logFd >= 0 ? logFd : nil
        spec.workingDirectory = "/"
        spec.dieWithParent = true
        spec.noNewPrivileges = true
        if let identity = launch.identity { spec.credentials = identity }
        do {
            return try ChildProcess.spawn(spec)
        } catch {
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
    package func pollExit() -> WaitStatus? { passt.pollExit() }

    /// SIGTERM, then SIGKILL after `graceSeconds`; reaped either way.
    package func terminate(graceSeconds: Double) { passt.terminate(graceSeconds: graceSeconds) }

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
        "msb_" + StableHash.hex16(directoryHash(directory))
    }

    /// 64-bit FNV-1a of a sandbox's directory: what its MAC address and table name derive from.
    private static func directoryHash(_ directory: String) -> UInt64 { StableHash.fnv1a64(directory.utf8) }
}
