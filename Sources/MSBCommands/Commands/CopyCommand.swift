import CMSBSys
import Foundation
import MSBClient
import MSBCore
import MSBOS

/// `msb cp`, like `docker cp`: files and directories stream as a tar archive through an
/// ordinary exec of the guest's `tar`, so copying works the same locally and through a
/// server, needs no extra channel, and keeps modes, links and timestamps.
struct CopyCommand: Subcommand {
    static let spec = CommandSpec(
        name: "cp", summary: "Copy files and directories between the host and a sandbox",
        usage: "[OPTIONS] SRC NAME:DEST | NAME:SRC DEST",
        options: [],
        minPositionals: 2, maxPositionals: 2,
        examples: ["msb cp ./project web:/root/", "msb cp web:/var/log/app.log ./app.log",
                   "msb cp web:/etc - | tar -t     # a tar archive on stdout", "tar -c src | msb cp - web:/root"])

    /// Where the archive goes in the guest: into DEST when it is a directory, else as DEST.
    static let unpackScript = """
        set -e; dest="$1"; entry="$2"
        if [ "$entry" = "-" ] || [ -d "$dest" ]; then mkdir -p "$dest"; exec tar -x -o -f - -C "$dest"; fi
        parent=$(dirname "$dest"); [ -d "$parent" ] || { echo "no such directory: $parent" >&2; exit 2; }
        work=$(mktemp -d "$parent/.msb-cp.XXXXXX"); trap 'rm -rf "$work"' EXIT
        tar -x -o -f - -C "$work"; mv "$work/$entry" "$dest"
        """

    static let packScript = """
        [ -e "$1" ] || [ -L "$1" ] || { echo "no such file or directory: $1" >&2; exit 2; }
        cd "$(dirname "$1")" && exec tar -c -f - -- "$(basename "$1")"
        """

    struct GuestPath {
        let sandbox: String
        let path: String
    }

    /// `NAME:PATH` names a sandbox path (a ':' before any '/'); anything else is a host path.
    static func guestPath(_ word: String) throws(MSBError) -> GuestPath? {
        guard let colon = word.firstIndex(of: ":"), !word[..<colon].contains("/") else { return nil }
        let name = String(word[..<colon]), path = String(word[word.index(after: colon)...])
        try InputParsing.validateName(name)
        guard path.hasPrefix("/") else {
            throw MSBError(.invalidArgument, "the sandbox path in '\(word)' must be absolute", hint: "e.g. \(name):/root/file")
        }
        return GuestPath(sandbox: name, path: path)
    }

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let (source, destination) = (arguments.positionals[0], arguments.positionals[1])
        switch (try guestPath(source), try guestPath(destination)) {
        case (nil, let guest?): try upload(source, to: guest, context)
        case (let guest?, nil): try download(guest, to: destination, context)
        case (_?, _?):
            throw MSBError(.invalidArgument, "copying between two sandboxes is not supported", hint: "copy through the host")
        case (nil, nil):
            throw MSBError(.invalidArgument, "one of SRC and DEST must be a sandbox path NAME:PATH",
                           hint: "e.g. msb cp ./file web:/root/ (write ./name:x for a host path with a colon)")
        }
        return 0
    }

    private static func upload(_ source: String, to guest: GuestPath, _ context: CommandContext) throws(MSBError) {
        let entry: String
        var tar: HostTar?
        if source == "-" {
            entry = "-"  // a tar archive on stdin, unpacked into the directory
        } else {
            var info = stat()
            guard lstat(source, &info) == 0 else {
                throw MSBError(.notFound, "cannot copy \(source): \(String(cString: strerror(errno)))")
            }
            let url = URL(fileURLWithPath: source).standardizedFileURL
            entry = url.lastPathComponent
            tar = try HostTar(["-c", "-f", "-", "-C", url.deletingLastPathComponent().path, "--", entry], archiveOnStdin: false)
        }
        let errors = ErrorText()
        let outcome = try context.backend.exec(
            guest.sandbox, ExecParameters(argv: ["sh", "-c", unpackScript, "msb-cp", guest.path, entry], environment: []),
            io: ExecIO(stdinFd: tar?.archiveFd ?? 0, stdout: { _ in }, stderr: { errors.append($0) }))
        let tarStatus = tar?.finish()
        try check(outcome, errors, "cannot copy into \(guest.sandbox):\(guest.path)")
        if let tarStatus, !tarStatus.status.succeeded {
            throw MSBError(.internalError, "cannot copy \(source): the host's tar failed (\(tarStatus.status))")
        }
    }

    private static func download(_ guest: GuestPath, to destination: String, _ context: CommandContext) throws(MSBError) {
        let errors = ErrorText()
        let parameters = ExecParameters(argv: ["sh", "-c", packScript, "msb-cp", guest.path])
        if destination == "-" {
            let outcome = try context.backend.exec(guest.sandbox, parameters, io: ExecIO(
                stdinFd: nil, stdout: { try? FileDescriptorIO.writeAll(1, $0) }, stderr: { errors.append($0) }))
            return try check(outcome, errors, "cannot copy from \(guest.sandbox):\(guest.path)")
        }
        // Into an existing directory the archive is unpacked in place (merging, like docker cp);
        // as a new name it is unpacked beside it first and renamed, so a failed copy leaves nothing.
        let target = URL(fileURLWithPath: destination).standardizedFileURL
        var isDirectory: ObjCBool = false
        let intoDirectory = FileManager.default.fileExists(atPath: target.path, isDirectory: &isDirectory) && isDirectory.boolValue
        let parent = intoDirectory ? target : target.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: parent.path) else {
            throw MSBError(.notFound, "cannot copy to \(destination): no such directory: \(parent.path)")
        }
        var work = target.path
        if !intoDirectory {
            var template = Array((parent.path + "/.msb-cp.XXXXXX").utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
                throw MSBError(.internalError, "cannot create a directory in \(parent.path): \(String(cString: strerror(errno)))")
            }
            work = made
        }
        defer { if !intoDirectory { try? FileManager.default.removeItem(atPath: work) } }
        let tar = try HostTar(["-x", "-o", "-f", "-", "-C", work], archiveOnStdin: true)
        let outcome = try context.backend.exec(guest.sandbox, parameters, io: ExecIO(
            stdinFd: nil, stdout: { try? FileDescriptorIO.writeAll(tar.archiveFd, $0) }, stderr: { errors.append($0) }))
        let tarResult = tar.finish()
        try check(outcome, errors, "cannot copy from \(guest.sandbox):\(guest.path)")
        guard tarResult.status.succeeded else {
            // Its complaints matter only if the guest's side worked.
            let why = tarResult.errors.trimmingCharacters(in: .whitespacesAndNewlines)
            throw MSBError(.internalError, "cannot copy to \(destination): \(why.isEmpty ? "the host's tar failed" : why)")
        }
        guard !intoDirectory else { return }
        let entry = URL(fileURLWithPath: guest.path).lastPathComponent
        guard rename(work + "/" + entry, target.path) == 0 else {
            throw MSBError(.internalError, "cannot move the copy into \(target.path): \(String(cString: strerror(errno)))")
        }
    }

    private static func check(_ outcome: ExecOutcome, _ errors: ErrorText, _ what: String) throws(MSBError) {
        guard outcome.exitCode != 0 else { return }
        let text = errors.text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch outcome.exitCode {
        case 127: throw MSBError(.unsupported, "\(what): the sandbox has no sh or tar")
        case 2 where !text.isEmpty: throw MSBError(.notFound, "\(what): \(text)")
        default: throw MSBError(.internalError, "\(what): \(text.isEmpty ? "exit \(outcome.exitCode)" : text)")
        }
    }
}

/// Collects a command's stderr for an error message (bounded).
final class ErrorText {
    private var bytes: [UInt8] = []
    func append(_ chunk: [UInt8]) { if bytes.count < 4096 { bytes += chunk.prefix(4096 - bytes.count) } }
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// The host's tar, reading or writing the archive through a pipe; its stderr goes to an
/// unnamed file read once it is done.
final class HostTar {
    private let child: ChildProcess
    private let errorsFd: Int32
    /// Our end of the archive pipe: write the archive here (`-x`) or read it (`-c`).
    private(set) var archiveFd: Int32

    init(_ arguments: [String], archiveOnStdin: Bool) throws(MSBError) {
        var pipe: [Int32] = [-1, -1]
        guard msb_pipe(&pipe, 0) == 0 else { throw MSBError(.internalError, "cannot create a pipe: \(String(cString: strerror(errno)))") }
        errorsFd = FileDescriptorIO.anonymousFile()
        var spec = SpawnSpec("/bin/tar", arguments: ["tar"] + arguments)
        if archiveOnStdin { spec.standardInput = pipe[0] } else { spec.standardOutput = pipe[1] }
        spec.standardError = errorsFd >= 0 ? errorsFd : nil
        spec.dieWithParent = true
        do { child = try ChildProcess.spawn(spec) } catch {
            close(pipe[0]); close(pipe[1])
            if errorsFd >= 0 { close(errorsFd) }
            throw MSBError(.internalError, "cannot run tar on the host: \(error.reason)")
        }
        // Keep only our end, so the other side sees EOF when we (or tar) are done.
        close(archiveOnStdin ? pipe[0] : pipe[1])
        archiveFd = archiveOnStdin ? pipe[1] : pipe[0]
    }

    /// Closes our end of the archive and waits for tar to end.
    func finish() -> (status: WaitStatus, errors: String) {
        if archiveFd >= 0 { close(archiveFd); archiveFd = -1 }
        let status = child.wait()
        let errors = errorsFd >= 0 ? String(decoding: FileDescriptorIO.readAll(fromStart: errorsFd, limitBytes: 4096), as: UTF8.self) : ""
        if errorsFd >= 0 { close(errorsFd) }
        return (status, errors)
    }
}
