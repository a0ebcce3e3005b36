import CMSBSys
import Glibc
import MSBProtocol

/// Applies the host's `setup` message: the one place the guest learns who it is. It runs
/// after every start, cold or restored; after a restore from a template it is what makes
/// each guest distinct (fresh randomness, the current time, its own name and disk).
enum GuestIdentity {
    /// Where the root disk is mounted before it becomes `/`.
    static let newRoot = "/newroot"
    /// Set once the root disk is the root (a snapshot of a running guest already has it).
    nonisolated(unsafe) private static var rootMounted = false

    /// Applies `setup`; returns what failed, or "" when all of it was applied. The clock
    /// and the hostname are best effort; fresh randomness, the root disk and the network
    /// interface are not.
    static func apply(_ setup: GuestSetup) -> String {
        var problems: [String] = []
        if msb_reseed_random(setup.entropy, UInt(setup.entropy.count)) != 0 {
            problems.append("cannot reseed the random number generator: \(errnoText())")
        }
        var time = timespec(tv_sec: Int(clamping: setup.wallClockNanoseconds / 1_000_000_000),
                            tv_nsec: Int(clamping: setup.wallClockNanoseconds % 1_000_000_000))
        if clock_settime(CLOCK_REALTIME, &time) != 0 { log("cannot set the clock: \(errnoText())") }
        if !setup.hostname.isEmpty, sethostname(setup.hostname, setup.hostname.utf8.count) != 0 {
            log("cannot set the hostname: \(errnoText())")
        }
        if !setup.rootDevice.isEmpty, !rootMounted {
            if let problem = switchRoot(to: setup.rootDevice) { problems.append(problem) } else { rootMounted = true }
        }
        // After the root switch: /etc/resolv.conf and /etc/hosts are the root disk's.
        if let network = setup.network { problems += GuestNetworkSetup.apply(network, onRootDisk: rootMounted) }
        problems += GuestVolumes.mount(setup.volumes)
        return problems.joined(separator: "; ")
    }

    /// Mounts `device` and makes it `/` the way switch_root does (move the mount onto `/`,
    /// chroot into it), but keeps this process running: the agent stays PID 1.
    private static func switchRoot(to device: String) -> String? {
        // The template was saved after the kernel scanned its disk: drop what it cached.
        if msb_block_flush_cache(device) != 0 { return "cannot open the root disk \(device): \(errnoText())" }
        mkdir(newRoot, 0o755)
        guard mount(device, newRoot, "ext4", UInt(MS_NOATIME), nil) == 0 else {
            return "cannot mount the root disk \(device): \(errnoText())"
        }
        for dir in ["proc", "sys", "dev", "tmp", "run"] { mkdir(newRoot + "/" + dir, 0o755) }
        for dir in ["/proc", "/sys", "/dev"] {
            guard mount(dir, newRoot + dir, nil, UInt(MS_MOVE), nil) == 0 else {
                return "cannot move \(dir) to the root disk: \(errnoText())"
            }
        }
        let tmpfsFlags = UInt(MS_NOSUID | MS_NODEV)
        guard mount("tmpfs", newRoot + "/tmp", "tmpfs", tmpfsFlags, "mode=1777") == 0,
              mount("tmpfs", newRoot + "/run", "tmpfs", tmpfsFlags, "mode=0755") == 0 else {
            return "cannot mount /tmp or /run on the root disk: \(errnoText())"
        }
        guard chdir(newRoot) == 0, mount(".", "/", nil, UInt(MS_MOVE), nil) == 0, chroot(".") == 0, chdir("/") == 0 else {
            return "cannot make the root disk the root: \(errnoText())"
        }
        return nil
    }
}
