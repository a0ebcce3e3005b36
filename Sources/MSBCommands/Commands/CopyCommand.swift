import CMSBSys
import Foundation
import MSBCore
import MSBProtocol

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
        let archiveFd: Int32
        var tar: Process?
        if source == "-" {
            entry = "-"  // a tar archive on stdin, unpacked into the directory
            archiveFd = 0
        } else {
            var info = stat()
            guard lstat(source, &info) == 0 else {
                throw MSBError(.notFound, "cannot copy \(source): \(String(cString: strerror(errno)))")
            }
            let url = URL(fileURLWithPath: source).standardizedFileURL
            entry = url.lastPathComponent
            let pipe = Pipe()
            tar = try hostTar(["-c", "-f", "-", "-C", url.deletingLastPathComponent().path, "--", entry]) { $0.standardOutput = pipe }
            try? pipe.fileHandleForWriting.close()  // only tar writes: EOF when it is done
            archiveFd = pipe.fileHandleForReading.fileDescriptor
        }
        let errors = ErrorText()
        let outcome = try context.backend.exec(
            guest.sandbox, ExecParameters(argv: ["sh", "-c", unpackScript, "msb-cp", guest.path, entry], environment: []),
            io: ExecIO(stdinFd: archiveFd, stdout: { _ in }, stderr: { errors.append($0) }))
        tar?.waitUntilExit()
        try check(outcome, errors, "cannot copy into \(guest.sandbox):\(guest.path)")
        if let tar, tar.terminationStatus != 0 {
            throw MSBError(.internalError, "cannot copy \(source): the host's tar failed (exit \(tar.terminationStatus))")
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
        let pipe = Pipe()
        // Its complaints matter only if the guest's side worked; read them on the side.
        let tarErrors = ErrorText(), tarStderr = Pipe(), tarDone = DispatchSemaphore(value: 0)
        let tar = try hostTar(["-x", "-o", "-f", "-", "-C", work]) {
            $0.standardInput = pipe
            $0.standardError = tarStderr
        }
        try? pipe.fileHandleForReading.close()
        try? tarStderr.fileHandleForWriting.close()
        Thread.detachNewThread {
            tarErrors.append(Array(tarStderr.fileHandleForReading.readDataToEndOfFile()))
            tarDone.signal()
        }
        let input = pipe.fileHandleForWriting.fileDescriptor
        let outcome = try context.backend.exec(guest.sandbox, parameters, io: ExecIO(
            stdinFd: nil, stdout: { try? FileDescriptorIO.writeAll(input, $0) }, stderr: { errors.append($0) }))
        try? pipe.fileHandleForWriting.close()
        tar.waitUntilExit()
        tarDone.wait()
        try check(outcome, errors, "cannot copy from \(guest.sandbox):\(guest.path)")
        guard tar.terminationStatus == 0 else {
            let why = tarErrors.text.trimmingCharacters(in: .whitespacesAndNewlines)
            throw MSBError(.internalError, "cannot copy to \(destination): \(why.isEmpty ? "the host's tar failed" : why)")
        }
        guard !intoDirectory else { return }
        let entry = URL(fileURLWithPath: guest.path).lastPathComponent
        guard rename(work + "/" + entry, target.path) == 0 else {
            throw MSBError(.internalError, "cannot move the copy into \(target.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Starts the host's tar with `arguments`, its streams set up by `connect`.
    private static func hostTar(_ arguments: [String], _ connect: (Process) -> Void) throws(MSBError) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/tar")
        process.arguments = arguments
        connect(process)
        do { try process.run() } catch { throw MSBError(.internalError, "cannot run tar on the host: \(error)") }
        return process
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
final class ErrorText: @unchecked Sendable {
    private var bytes: [UInt8] = []
    func append(_ chunk: [UInt8]) { if bytes.count < 4096 { bytes += chunk.prefix(4096 - bytes.count) } }
    var text: String { String(decoding: bytes, as: UTF8.self) }
}
