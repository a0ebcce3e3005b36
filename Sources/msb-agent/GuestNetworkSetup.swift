import CMSBSys
import Glibc
import MSBOS
import MSBProtocol

/// Configures the guest's one network interface from `setup.network`, after the root
/// switch so /etc is the image's. Every step is idempotent: setup runs again after each
/// restore of a saved guest, whose interface may be up already with another MAC address,
/// address and default route.
enum GuestNetworkSetup {
    /// How long the interface may take to appear: virtio_net is loaded before the agent
    /// starts, so this only covers a slow probe.
    static let interfaceWaitSeconds = 2.0
    /// /etc/hosts is read whole to be merged; one larger than this is left alone.
    static let maximumHostsFileBytes = 1 << 20

    /// The interface the last setup configured, for the statistics ("" when none).
    nonisolated(unsafe) private(set) static var configuredInterface = ""

    /// What the last setup applied, and whether its files went to the root disk (false:
    /// the initramfs). A template's guest is set up once before it is saved; a sandbox
    /// restored from it then changes only what differs (its MAC address), because under
    /// TCG every kernel path a restored guest runs for the first time is translated anew:
    /// the whole setup again cost a start ~130 ms, the MAC alone a few.
    nonisolated(unsafe) private static var applied: GuestNetwork?
    nonisolated(unsafe) private static var filesOnRootDisk: Bool?

    /// Applies `network`; returns what failed (nothing when all of it was applied).
    /// `onRootDisk`: whether / is the root disk now (its /etc is the image's).
    static func apply(_ network: GuestNetwork, onRootDisk: Bool) -> [String] {
        if let problem = network.problem { return ["bad network configuration: \(problem)"] }
        var previous = applied
        let previousMACAddress = previous?.macAddress
        previous?.macAddress = network.macAddress
        let onlyTheMACChanged = previous == network && configuredInterface == network.interface
        if onlyTheMACChanged {
            guard msb_net_set_mac(network.interface, network.macAddress) == 0 else {
                applied = nil
                return apply(network, onRootDisk: onRootDisk)
            }
        } else {
            applied = nil
            if msb_net_set_up("lo", 1) != 0 { log("cannot bring up lo: \(errnoText())") }
            if let problem = configureInterface(network) { return [problem] }
        }
        applied = network
        configuredInterface = network.interface
        // passt learns the guest's MAC address from its frames: an ARP request for the
        // gateway teaches it ours (a cold-booted guest has sent nothing yet; a fork's guest
        // ran on and sent frames under its source's address). A guest restored from a
        // template sends nothing before its MAC changes (IPv6 off, no announcements), and
        // QEMU's announcement after the restore carried ours already: skipping the request
        // there saves a start the guest's first transmit and receive paths, ~30 ms under TCG.
        let restoredFromTemplate = onlyTheMACChanged && previousMACAddress == GuestNetwork.templateMACAddress
        if !restoredFromTemplate, msb_net_announce(network.interface, network.macAddress, network.address, network.gateway) != 0 {
            log("cannot announce \(network.interface)'s address: \(errnoText())")
        }
        if onlyTheMACChanged && filesOnRootDisk == onRootDisk { return [] }
        var problems: [String] = []
        if let problem = replaceEtcFile("resolv.conf", with: network.resolvConf) { problems.append(problem) }
        switch readEtcFile("hosts") {
        case .failure(let problem): problems.append(problem)
        case .success(let existing):
            if let problem = replaceEtcFile("hosts", with: network.hostsFile(merging: existing)) { problems.append(problem) }
        }
        filesOnRootDisk = problems.isEmpty ? onRootDisk : nil
        return problems
    }

    private static func configureInterface(_ network: GuestNetwork) -> String? {
        let name = network.interface
        let waitStart = MonotonicClock.now()
        while if_nametoindex(name) == 0 {
            if MonotonicClock.now() - waitStart > interfaceWaitSeconds {
                return "no network interface \(name) appeared in the guest (is virtio_net loaded?)"
            }
            usleep(10_000)
        }
        // virtio-net changes its MAC address while up (a restored guest's interface is up
        // from the template's warm-up); taking it down and up again costs a start ~100 ms
        // under TCG. Down first only where a live change is refused.
        if msb_net_set_mac(name, network.macAddress) != 0 {
            guard msb_net_set_up(name, 0) == 0 else { return "cannot take \(name) down: \(errnoText())" }
            guard msb_net_set_mac(name, network.macAddress) == 0 else {
                return "cannot set the MAC address of \(name): \(errnoText())"
            }
        }
        // IPv4 only (passt offers no IPv6): without this the kernel gives the interface a
        // link-local address from its MAC and runs duplicate detection and multicast
        // reports, again after every MAC change; under TCG that cost each start ~20 ms.
        if let problem = disableIPv6(on: name) { return problem }
        guard msb_net_set_mtu(name, network.mtu) == 0 else { return "cannot set the MTU of \(name) to \(network.mtu): \(errnoText())" }
        let address = GuestNetwork.dottedQuad(network.address)
        guard msb_net_set_ipv4(name, network.address, network.netmask) == 0 else {
            return "cannot give \(name) the address \(address)/\(network.prefixLength): \(errnoText())"
        }
        guard msb_net_set_up(name, 1) == 0 else { return "cannot bring \(name) up: \(errnoText())" }
        guard msb_net_replace_default_route(name, network.gateway) == 0 else {
            return "cannot add the default route via \(GuestNetwork.dottedQuad(network.gateway)): \(errnoText())"
        }
        return nil
    }

    /// Turns IPv6 off on `interface`; nothing to do on a kernel without IPv6.
    private static func disableIPv6(on interface: String) -> String? {
        let path = "/proc/sys/net/ipv6/conf/\(interface)/disable_ipv6"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { return errno == ENOENT ? nil : "cannot turn IPv6 off on \(interface): \(errnoText())" }
        defer { close(fd) }
        guard write(fd, "1", 1) == 1 else { return "cannot turn IPv6 off on \(interface): \(errnoText())" }
        return nil
    }

    private enum ReadOutcome { case success(String), failure(String) }

    /// /etc/`name`, "" when there is none.
    private static func readEtcFile(_ name: String) -> ReadOutcome {
        let fd = open("/etc/" + name, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            return errno == ENOENT ? .success("") : .failure("cannot read /etc/\(name): \(errnoText())")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count < 0 { return .failure("cannot read /etc/\(name): \(errnoText())") }
            if count == 0 { break }
            bytes += buffer[0..<count]
            if bytes.count > maximumHostsFileBytes { return .failure("/etc/\(name) is larger than \(maximumHostsFileBytes) bytes") }
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// Writes /etc/`name` through a temporary file renamed over it: readers see the old
    /// or the new file, and a symbolic link there (to a resolver's stub file) is replaced.
    private static func replaceEtcFile(_ name: String, with text: String) -> String? {
        mkdir("/etc", 0o755)
        let path = "/etc/" + name
        let temporary = "/etc/.\(name).msb-new"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { return "cannot write \(path): \(errnoText())" }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                let problem = "cannot write \(path): \(errnoText())"
                close(fd); unlink(temporary)
                return problem
            }
            written += count
        }
        // fchmod: the mode given to open is reduced by the umask. No fsync: both files are
        // written again at every start, and a start should not wait on the disk.
        let synced = fchmod(fd, 0o644) == 0
        let problem = synced ? nil : "cannot write \(path): \(errnoText())"
        close(fd)
        if let problem { unlink(temporary); return problem }
        guard rename(temporary, path) == 0 else {
            let problem = "cannot replace \(path): \(errnoText())"
            unlink(temporary)
            return problem
        }
        return nil
    }
}
