import Foundation
import MSBArchive
import MSBClient
import MSBCore
import MSBOS

/// `msb cp`, like `docker cp`: files and directories stream as a tar archive through an
/// ordinary exec of the guest's `tar`, so copying works the same locally and through a
/// server, needs no extra channel, and keeps modes, links and timestamps. The host side
/// reads and writes the archive with libarchive (`CopyStreams`); what comes from the guest
/// is unpacked under `CopyExtractor`'s rules (docs/ARCHIVES.md), beside the destination
/// first, so a refused stream leaves the destination as it was.
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
        var packing: CopyStreams.Packing?
        if source == "-" {
            entry = "-"  // a tar archive on stdin, unpacked into the directory
        } else {
            var info = stat()
            guard lstat(source, &info) == 0 else {
                throw MSBError(.notFound, "cannot copy \(source): \(String(cString: strerror(errno)))")
            }
            let url = URL(fileURLWithPath: source).standardizedFileURL
            entry = url.lastPathComponent
            packing = try CopyStreams.Packing(source: url.path, as: entry)
        }
        let errors = ErrorText()
        let outcome: ExecOutcome
        do {
            outcome = try context.backend.exec(
                guest.sandbox, ExecParameters(argv: ["sh", "-c", unpackScript, "msb-cp", guest.path, entry], environment: []),
                io: ExecIO(stdinFd: packing?.archiveFd ?? 0, stdout: { _ in }, stderr: { errors.append($0) }))
        } catch {
            _ = packing?.finish()
            throw error
        }
        let packed = packing?.finish()
        // The host's side failing (a file it could not read) explains a guest tar that saw a cut
        // stream; a guest that stopped reading explains the host's broken pipe.
        if case .failure(let error)? = packed, packing?.readerGone != true { throw error }
        try check(outcome, errors, "cannot copy into \(guest.sandbox):\(guest.path)")
        if case .failure(let error)? = packed { throw error }
    }

    private static func download(_ guest: GuestPath, to destination: String, _ context: CommandContext) throws(MSBError) {
        let errors = ErrorText()
        let parameters = ExecParameters(argv: ["sh", "-c", packScript, "msb-cp", guest.path])
        if destination == "-" {
            let outcome = try context.backend.exec(guest.sandbox, parameters, io: ExecIO(
                stdinFd: nil, stdout: { try? FileDescriptorIO.writeAll(1, $0) }, stderr: { errors.append($0) }))
            return try check(outcome, errors, "cannot copy from \(guest.sandbox):\(guest.path)")
        }
        // Only the requested entry's subtree is taken, unpacked beside where it goes and then
        // moved there (renamed, or merged into an existing directory, like docker cp).
        let entry = URL(fileURLWithPath: guest.path).lastPathComponent
        guard ArchivePath.isPlainName(entry) else {
            throw MSBError(.invalidArgument, "cannot copy \(guest.sandbox):\(guest.path): name a file or directory below /")
        }
        let target = URL(fileURLWithPath: destination).standardizedFileURL
        var isDirectory: ObjCBool = false
        let intoDirectory = FileManager.default.fileExists(atPath: target.path, isDirectory: &isDirectory) && isDirectory.boolValue
        let place = intoDirectory ? target.path : target.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: place) else {
            throw MSBError(.notFound, "cannot copy to \(destination): no such directory: \(place)")
        }
        let work = try CopyStreams.workDirectory(in: place)
        defer { CopyStreams.removeWorkDirectory(work) }
        let unpacking = try CopyStreams.Unpacking(work: work, entryName: entry)
        let outcome: ExecOutcome
        do {
            outcome = try context.backend.exec(guest.sandbox, parameters, io: ExecIO(
                stdinFd: nil, stdout: { unpacking.write($0) }, stderr: { errors.append($0) }))
        } catch {
            _ = unpacking.finish()
            throw error
        }
        let unpacked = unpacking.finish()
        try check(outcome, errors, "cannot copy from \(guest.sandbox):\(guest.path)")
        if case .failure(let error) = unpacked { throw error }
        try CopyExtractor.place(work: work, entryName: entry, into: place,
                                as: intoDirectory ? entry : target.lastPathComponent, shownAs: destination)
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
