import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS

/// `msb fs`: the Files API from the command line, locally or through a server. Unlike
/// `msb cp` (tar through the guest's own tools), the guest agent does each operation
/// itself, so it works in any image; paths are the guest's, absolute, `..` refused.
/// `cat` and `write` stream in ranges (`GuestFileOperation.maxChunkBytes`), so a file of
/// any size passes without being held whole.
struct FileCommand: Subcommand {
    static let spec = CommandSpec(
        name: "fs", summary: "List, read, write and remove files in a sandbox (ls, stat, cat, write, mkdir, rm, mv)",
        usage: "ls|stat|cat|write|mkdir|rm NAME:PATH [OPTIONS] | mv NAME:PATH [NAME:]PATH",
        options: [
            OptionSpec(long: "format", short: nil, valueName: "FORMAT", help: "ls and stat output format: table or json (default: table)",
                       completion: .values(["table", "json"])),
            OptionSpec(long: "recursive", short: "r", valueName: nil, help: "rm: remove a directory and everything in it"),
            OptionSpec(long: "parents", short: "p", valueName: nil, help: "mkdir: make missing parents too; an existing directory is fine"),
            OptionSpec(long: "mode", short: nil, valueName: "MODE", help: "write: permission bits of a new file, in octal (default: 644)"),
        ],
        minPositionals: 2, maxPositionals: 3,
        examples: ["msb fs ls web:/etc", "msb fs cat web:/etc/hostname", "echo hi | msb fs write web:/root/hello.txt",
                   "msb fs write web:/root/run.sh --mode 755 < run.sh", "msb fs mkdir -p web:/srv/data",
                   "msb fs rm -r web:/srv/data", "msb fs mv web:/root/a.txt /root/b.txt"])

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let action = arguments.positionals[0]
        let words = Array(arguments.positionals.dropFirst())
        guard action == "mv" || words.count == 1 else {
            throw MSBError(.invalidArgument, "'msb fs \(action)' takes one NAME:PATH", hint: "usage: msb fs \(action) NAME:PATH")
        }
        let target = try guestPath(words[0])
        let backend = context.backend
        switch action {
        case "ls", "list": return try list(target, arguments, context)
        case "stat":
            let info = try statInfo(backend.fileOperation(target.sandbox, .stat(path: target.path)))
            try show([info], arguments, context)
        case "cat": try cat(target, context)
        case "write": try write(target, mode: try mode(arguments.value("mode")), context)
        case "mkdir": _ = try backend.fileOperation(target.sandbox, .makeDirectory(path: target.path, parents: arguments.flag("parents")))
        case "rm", "remove": _ = try backend.fileOperation(target.sandbox, .remove(path: target.path, recursive: arguments.flag("recursive")))
        case "mv", "move":
            guard words.count == 2 else { throw MSBError(.invalidArgument, "'msb fs mv' takes NAME:PATH and a destination") }
            let destination = try destinationPath(words[1], of: target)
            _ = try backend.fileOperation(target.sandbox, .rename(path: target.path, destination: destination))
        default:
            throw MSBError(.invalidArgument, "unknown fs action '\(action)'", hint: "use ls, stat, cat, write, mkdir, rm or mv")
        }
        return 0
    }

    /// `NAME:PATH`, the path absolute and normalised.
    static func guestPath(_ word: String) throws(MSBError) -> CopyCommand.GuestPath {
        guard let guest = try CopyCommand.guestPath(word) else {
            throw MSBError(.invalidArgument, "expected NAME:PATH, got '\(word)'", hint: "e.g. msb fs ls web:/root")
        }
        return CopyCommand.GuestPath(sandbox: guest.sandbox, path: try GuestPath.normalized(guest.path))
    }

    /// `mv`'s destination: a path in the same sandbox, with or without its name.
    static func destinationPath(_ word: String, of source: CopyCommand.GuestPath) throws(MSBError) -> String {
        guard word.hasPrefix("/") else {
            let destination = try guestPath(word)
            guard destination.sandbox == source.sandbox else {
                throw MSBError(.invalidArgument, "'msb fs mv' moves within one sandbox", hint: "copy between sandboxes with 'msb cp' through the host")
            }
            return destination.path
        }
        return try GuestPath.normalized(word)
    }

    /// `--mode`: octal permission bits.
    static func mode(_ text: String?) throws(MSBError) -> UInt32? {
        guard let text else { return nil }
        guard let mode = UInt32(text, radix: 8), mode <= 0o7777 else {
            throw MSBError(.invalidArgument, "invalid mode '\(text)': give octal permission bits", hint: "e.g. --mode 644")
        }
        return mode
    }

    private static func list(_ target: CopyCommand.GuestPath, _ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        let entries: [GuestFileInfo]
        do throws(MSBError) {
            guard case .entries(let listed) = try context.backend.fileOperation(target.sandbox, .list(path: target.path)) else {
                throw unexpected()
            }
            entries = listed
        } catch where error.code == .notADirectory {
            // Like ls: a file lists as itself.
            entries = [try statInfo(context.backend.fileOperation(target.sandbox, .stat(path: target.path)))]
        }
        try show(entries, arguments, context)
        return 0
    }

    private static func show(_ entries: [GuestFileInfo], _ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) {
        if try OutputFormatting.wantsJSON(arguments) {
            context.write(try OutputFormatting.json(entries) + "\n")
            return
        }
        context.write(OutputFormatting.table(
            header: ["MODE", "SIZE", "MODIFIED", "NAME"],
            rows: entries.map { entry in
                [permissions(entry), String(entry.size),
                 OutputFormatting.iso8601(Date(timeIntervalSince1970: TimeInterval(entry.modified))),
                 entry.type == "directory" ? entry.name + "/" : entry.name]
            }))
    }

    /// `drwxr-xr-x`, as ls writes it.
    static func permissions(_ entry: GuestFileInfo) -> String {
        let kind = switch entry.type {
        case "directory": "d"
        case "symlink": "l"
        case "file": "-"
        default: "?"
        }
        let letters: [Character] = ["r", "w", "x"]
        return kind + String((0..<9).map { bit in entry.mode & (0o400 >> UInt32(bit)) != 0 ? letters[bit % 3] : "-" })
    }

    private static func cat(_ target: CopyCommand.GuestPath, _ context: CommandContext) throws(MSBError) {
        var offset: UInt64 = 0
        let chunk = GuestFileOperation.maxChunkBytes
        while true {
            guard case .contents(let bytes, _) = try context.backend.fileOperation(
                target.sandbox, .read(path: target.path, offset: offset, length: chunk)) else { throw unexpected() }
            guard context.writeBytes(bytes) else { return }  // the reader went away, like cat under head
            guard bytes.count == chunk else { return }
            offset += UInt64(bytes.count)
        }
    }

    /// stdin goes to a new file beside the target, renamed over it once whole: readers in the
    /// guest see the old file or the new one, never a part, and a failed write leaves the old
    /// file as it was. The new file keeps the old one's permission bits unless --mode is given.
    private static func write(_ target: CopyCommand.GuestPath, mode: UInt32?, _ context: CommandContext) throws(MSBError) {
        var mode = mode
        if mode == nil, case .info(let existing)? = try? context.backend.fileOperation(target.sandbox, .stat(path: target.path)),
           existing.type == "file" {
            mode = existing.mode
        }
        let slash = target.path.lastIndex(of: "/") ?? target.path.startIndex
        let directory = target.path[..<slash]
        let base = String(target.path[target.path.index(after: slash)...].prefix(200))
        let temporary = "\(directory)/.\(base).msb-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        do throws(MSBError) {
            var offset: UInt64 = 0
            repeat {
                let bytes = try readChunk(context.standardInputFd, GuestFileOperation.maxChunkBytes)
                if bytes.isEmpty && offset > 0 { break }
                _ = try context.backend.fileOperation(target.sandbox, .write(path: temporary, offset: offset, contents: bytes, mode: mode))
                if bytes.count < GuestFileOperation.maxChunkBytes { break }
                offset += UInt64(bytes.count)
            } while true
            _ = try context.backend.fileOperation(target.sandbox, .rename(path: temporary, destination: target.path))
        } catch {
            _ = try? context.backend.fileOperation(target.sandbox, .remove(path: temporary, recursive: false))
            // The error names the path the user gave, not the temporary file.
            throw MSBError(error.code, error.message.replacingOccurrences(of: temporary, with: target.path), hint: error.hint)
        }
    }

    /// Up to `count` bytes of `fd`, fewer only at its end.
    private static func readChunk(_ fd: Int32, _ count: Int) throws(MSBError) -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < count {
            let more: [UInt8]?
            do { more = try FileDescriptorIO.readSome(fd, maxBytes: min(1 << 20, count - bytes.count)) } catch {
                throw MSBError(.invalidArgument, "cannot read stdin: \(error)")
            }
            guard let more else { break }
            if more.isEmpty {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&p, 1, -1)  // a non-blocking stdin with nothing yet: wait for it
                continue
            }
            bytes += more
        }
        return bytes
    }

    private static func statInfo(_ result: GuestFileResult) throws(MSBError) -> GuestFileInfo {
        guard case .info(let info) = result else { throw unexpected() }
        return info
    }

    private static func unexpected() -> MSBError { MSBError(.internalError, "the backend answered another operation") }
}
