import CMSBSys
import Foundation
import MSBCore
import MSBOS
import MSBVMM

/// `msb _keep-template DIR`: holds one template's RAM as a sealed memfd and hands it to
/// every supervisor that restores from the template.
///
/// Why a process: QEMU 7.2 opens its RAM file read-write even to map it copy-on-write, so
/// a QEMU given the template's file could write into it (and so into later sandboxes and
/// the unchanged pages of running ones). A memfd sealed against writes can be opened
/// read-write and mapped privately, but not changed by anyone; only a process can hold
/// one. Supervisors keep their connection open while they run; the keeper exits once
/// none has been connected for `idleSeconds`, or when its template is removed.
package enum TemplateKeeper {
    package static let commandName = "_keep-template"
    static let idleSeconds = 30.0

    /// Where the keeper of the template in `directory` listens. The directory's inode is in
    /// the name: a template rebuilt under the same key is another directory, and must never
    /// be served the memory of the one it replaced.
    static func socketPath(_ directory: String) -> String? {
        guard let inode = directoryInode(directory) else { return nil }
        return directory + ".\(inode).sock"
    }

    static func directoryInode(_ directory: String) -> UInt64? {
        var info = stat()
        guard lstat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        return UInt64(truncatingIfNeeded: info.st_ino)
    }

    package static func run(_ arguments: [String]) -> Int32 {
        guard arguments.count == 1, let directory = arguments.first, directory.hasPrefix("/") else {
            try? FileDescriptorIO.writeAll(2, Array("usage: msb \(commandName) TEMPLATE-DIRECTORY (internal)\n".utf8))
            return 2
        }
        _ = msb_signal_ignore(SIGPIPE)
        guard let path = socketPath(directory), let inode = directoryInode(directory) else { return fail("no template at \(directory)") }
        let ram = open(directory + "/memory.ram", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        var info = stat()
        guard ram >= 0, fstat(ram, &info) == 0 else { return fail("cannot open \(directory)/memory.ram") }
        let memory = msb_sealed_memory_copy(ram, Int64(info.st_size))
        close(ram)
        guard memory >= 0 else { return fail("cannot make the sealed copy of the template's memory") }
        // Bound under a private name and renamed into place: a supervisor that can connect
        // gets the whole memory at once.
        let temporary = path + ".\(getpid())"
        let listenFd: Int32
        do { listenFd = try UnixSocket.listen(path: temporary) } catch { return fail(error.description) }
        guard rename(temporary, path) == 0 else { return fail("cannot publish \(path)") }
        var published = stat()
        stat(path, &published)
        serve(listenFd, memory: memory, directory: directory, inode: inode)
        // Removed only if it is still ours (a newer keeper may have taken the name).
        var now = stat()
        if stat(path, &now) == 0, now.st_ino == published.st_ino { unlink(path) }
        return 0
    }

    private static func serve(_ listenFd: Int32, memory: Int32, directory: String, inode: UInt64) {
        var clients: [Int32] = []
        var idleSince: Double? = MonotonicClock.now()
        while true {
            var entries = [pollfd(fd: listenFd, events: Int16(POLLIN), revents: 0)]
                + clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = poll(&entries, nfds_t(entries.count), 1000)
            if entries[0].revents != 0 {
                let client = msb_accept(listenFd)
                if client >= 0 {
                    var byte: UInt8 = 0
                    if msb_send_with_fd(client, &byte, 1, memory) == 1 { clients.append(client) } else { close(client) }
                }
            }
            // A supervisor never writes: readable means it closed (or broke the rule).
            for entry in entries.dropFirst() where entry.revents != 0 {
                close(entry.fd)
                clients.removeAll { $0 == entry.fd }
            }
            if !clients.isEmpty {
                idleSince = nil
            } else {
                let now = MonotonicClock.now()
                // Removed, or replaced by a rebuilt template: nobody will ask for this memory.
                if directoryInode(directory) != inode { return }
                if let since = idleSince, now - since >= idleSeconds { return }
                if idleSince == nil { idleSince = now }
            }
        }
    }

    private static func fail(_ message: String) -> Int32 {
        try? FileDescriptorIO.writeAll(2, Array("msb-template-keeper: \(message): \(String(cString: strerror(errno)))\n".utf8))
        return 1
    }

    /// The sealed memory of `template` and the connection that keeps its keeper alive
    /// (the caller holds it open while its VM runs). Starts the keeper if none answers,
    /// under the template's lock so concurrent starts make one.
    static func memory(of template: Template, store: TemplateStore, paths: MSBPaths) throws(MSBError) -> (memory: Int32, connection: Int32) {
        if let held = try? receive(template) { return held }
        return try store.withBuildLock(key: template.key, timeoutSeconds: 60) { () throws(MSBError) -> (memory: Int32, connection: Int32) in
            if let held = try? receive(template) { return held }
            return try start(template, paths: paths)
        }
    }

    private static func start(_ template: Template, paths: MSBPaths) throws(MSBError) -> (memory: Int32, connection: Int32) {
        var spec = SpawnSpec(CurrentExecutable.path, arguments: [CurrentExecutable.path, commandName, template.directory],
                             environment: paths.childEnvironment(passing: ["LANG"]))
        spec.workingDirectory = "/"
        spec.noNewPrivileges = true
        let log = open(template.directory + ".keeper.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { if log >= 0 { close(log) } }
        if log >= 0 { spec.standardOutput = log; spec.standardError = log }
        let keeper: ChildProcess
        do { keeper = try ChildProcess.spawn(spec) } catch {
            throw MSBError(.internalError, "cannot start the template's keeper: \(error.reason)")
        }
        let deadline = MonotonicClock.now() + 20
        while MonotonicClock.now() < deadline {
            if let held = try? receive(template) { return held }
            if keeper.poll() != nil { break }
            usleep(5_000)
        }
        throw MSBError(.vmmFailure, "the template's keeper did not start (see \(template.directory).keeper.log)")
    }

    private static func receive(_ template: Template) throws(MSBError) -> (memory: Int32, connection: Int32) {
        let connection: Int32
        guard let path = socketPath(template.directory) else { throw MSBError(.notFound, "the template was removed") }
        do { connection = try UnixSocket.connect(path: path) } catch {
            throw MSBError(.vmmFailure, error.description)
        }
        let memory = msb_receive_fd(connection)
        guard memory >= 0 else {
            close(connection)
            throw MSBError(.vmmFailure, "the template's keeper sent no memory")
        }
        return (memory, connection)
    }
}
