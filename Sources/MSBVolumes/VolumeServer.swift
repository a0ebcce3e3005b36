import Glibc
import MSBCore
import MSBOS

/// One volume's file server on the host: a virtiofsd (QEMU 7.2's, vhost-user) serving one
/// directory to one sandbox, started, owned and reaped by its supervisor.
///
/// Confinement: virtiofsd needs root (it switches its file-system uid to the guest's for
/// each request, and sets up its own namespaces), so it is confined rather than
/// unprivileged. It sees only a copy of the directory's mount tree, taken from a descriptor
/// the supervisor opened and checked (`SpawnSpec.mountTree`: nothing swapped in by path
/// since), read-only when the volume is `:ro`, nosuid and nodev; inside that it pivots into
/// the directory in fresh mount, pid and network namespaces and runs its own seccomp
/// filter. It may not make device nodes or set file capabilities (`modcaps`).
package final class VolumeServer {
    package static let virtiofsdPath = "/usr/lib/qemu/virtiofsd"

    /// QEMU's end: connected to virtiofsd's listening socket, which it accepts once.
    package private(set) var vmmDescriptor: Int32
    package let tag: String
    /// Where the guest mounts it: what messages call it.
    package let guestPath: String
    package let process: OwnedChild

    package struct Launch: Sendable {
        /// The shared directory, canonical (no symbolic link on the way).
        package var source: String
        package var readOnly: Bool
        /// The guest mounts the device by this tag, at `guestPath`.
        package var tag: String
        package var guestPath: String
        /// A directory of the sandbox's own (0700): virtiofsd's mount point lives here.
        package var workDirectory: String
        /// Where its listening socket lives while it starts (in a 0700 directory; at most
        /// 107 bytes, so no deeper than the sandbox's control socket).
        package var socketPath: String
        package var logPath: String

        package init(source: String, readOnly: Bool, tag: String, guestPath: String, workDirectory: String, socketPath: String,
                     logPath: String) {
            self.source = source
            self.readOnly = readOnly
            self.tag = tag
            self.guestPath = guestPath
            self.workDirectory = workDirectory
            self.socketPath = socketPath
            self.logPath = logPath
        }
    }

    private init(vmmDescriptor: Int32, tag: String, guestPath: String, process: ChildProcess) {
        self.vmmDescriptor = vmmDescriptor
        self.tag = tag
        self.guestPath = guestPath
        self.process = OwnedChild(process)
    }

    deinit { releaseVMMEnd() }

    /// virtiofsd's command line: the listening socket at fd 4, the mount point as its source.
    package static func arguments(source mountPoint: String) -> [String] {
        [virtiofsdPath, "--fd=4", "-o", "source=\(mountPoint)", "-o", "sandbox=namespace", "-o", "cache=auto",
         "-o", "no_xattr", "-o", "no_posix_lock", "-o", "no_flock", "-o", "modcaps=-mknod:-setfcap",
         "-o", "log_level=warn", "--rlimit-nofile=65536"]
    }

    package static func start(_ launch: Launch) throws(MSBError) -> VolumeServer {
        guard access(virtiofsdPath, X_OK) == 0 else {
            throw MSBError(.unsupported, "virtiofsd is not installed (\(virtiofsdPath)): volumes need it",
                           hint: "install the qemu-system-common package (scripts/setup.sh does)")
        }
        let directory = try openCheckedDirectory(launch.source)
        defer { close(directory) }
        let mountPoint = launch.workDirectory + "/" + launch.tag
        let socketPath = launch.socketPath
        mkdir(mountPoint, 0o700)
        unlink(socketPath)
        let listening: Int32
        do { listening = try UnixSocket.listen(path: socketPath) } catch {
            throw MSBError(.internalError, "cannot make the volume's socket: \(error.description)")
        }
        defer { close(listening); unlink(socketPath) }
        // Connected before virtiofsd starts: the connection waits in the backlog until it
        // accepts, and the socket's path is gone before anyone else could look for it.
        let vmmEnd: Int32
        do { vmmEnd = try UnixSocket.connect(path: socketPath) } catch {
            throw MSBError(.internalError, "cannot connect to the volume's socket: \(error.description)")
        }
        let logFd = open(launch.logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        defer { if logFd >= 0 { close(logFd) } }
        var spec = SpawnSpec(virtiofsdPath, arguments: arguments(source: mountPoint), environment: ["PATH=/usr/bin:/bin"])
        spec.inheritedDescriptors = [directory, listening]
        spec.standardError = logFd >= 0 ? logFd : nil
        spec.workingDirectory = mountPoint
        spec.mountTree = launch.readOnly ? .readOnly : .readWrite
        spec.dieWithParent = true
        do {
            return VolumeServer(vmmDescriptor: vmmEnd, tag: launch.tag, guestPath: launch.guestPath, process: try ChildProcess.spawn(spec))
        } catch {
            close(vmmEnd)
            throw MSBError(.unsupported, "cannot start virtiofsd: \(error.description)")
        }
    }

    /// The directory at `path`, opened without following a symbolic link anywhere on the
    /// way: `path` is canonical when stored, so a link there now was put there since.
    private static func openCheckedDirectory(_ path: String) throws(MSBError) -> Int32 {
        let pathOnly: Int32 = 0o10_000_000  // O_PATH, which Glibc's module does not export
        let fd = open(path, pathOnly | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw MSBError(.invalidArgument, "cannot open the volume's directory \(path): \(String(cString: strerror(errno)))")
        }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        let resolved = count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        guard resolved == path else {
            close(fd)
            throw MSBError(.invalidArgument, "the volume's directory \(path) now resolves elsewhere (a symbolic link on its path)",
                           hint: "give the directory's real path")
        }
        return fd
    }

    /// Once QEMU holds its end.
    package func releaseVMMEnd() {
        if vmmDescriptor >= 0 { close(vmmDescriptor) }
        vmmDescriptor = -1
    }

    /// virtiofsd's status if it has ended; never blocks.
    package func pollExit() -> WaitStatus? { process.pollExit() }

    /// SIGTERM, then SIGKILL after `graceSeconds`; reaped either way.
    package func terminate(graceSeconds: Double) { process.terminate(graceSeconds: graceSeconds) }
}
