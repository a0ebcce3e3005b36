import Foundation
import MSBCore
import MSBProtocol

/// The Files API as front ends see it: one operation on one guest path. Paths address the
/// guest's file system only (absolute, normalised, `..` refused), never a host path.
/// Reads and writes are ranged, at most `maxChunkBytes` per call, so neither a server call
/// nor the CLI ever holds a whole file: `msb fs cat`/`write` loop over the ranges.
package enum GuestFileOperation: Sendable, Equatable {
    /// Bytes from `offset`, at most `length` (≤ `maxChunkBytes`).
    case read(path: String, offset: UInt64, length: Int)
    /// Offset 0 creates or truncates the file (with `mode` when new, else 0644); a later
    /// offset writes into the file that made.
    case write(path: String, offset: UInt64, contents: [UInt8], mode: UInt32?)
    case list(path: String)
    case stat(path: String)
    case makeDirectory(path: String, parents: Bool)
    case remove(path: String, recursive: Bool)
    case rename(path: String, destination: String)

    /// One call's file bytes at most: a server call's base64 body (4/3 of it) stays
    /// well within the server's 8 MiB request limit.
    package static let maxChunkBytes = 4 << 20
    /// Entries a `list` returns at most; a larger directory is refused as too large.
    package static let maxListEntries = 10_000

    package var path: String {
        switch self {
        case .read(let path, _, _), .write(let path, _, _, _), .list(let path), .stat(let path),
             .makeDirectory(let path, _), .remove(let path, _), .rename(let path, _): path
        }
    }
}

package enum GuestFileResult: Sendable, Equatable {
    case done
    /// `read`: the bytes, and the file's size then (a short chunk below it means the end).
    case contents([UInt8], fileSizeBytes: UInt64)
    /// `write`: the file's size after it.
    case written(fileSizeBytes: UInt64)
    case entries([GuestFileInfo])
    case info(GuestFileInfo)
}

/// A guest file as `msb fs ls`/`stat` and `sandbox.fs.list`/`stat` show it.
package struct GuestFileInfo: Sendable, Equatable, Codable {
    package var name: String
    /// `file`, `directory`, `symlink` or `other`.
    package var type: String
    package var size: UInt64
    /// Permission bits (e.g. 420 = 0644).
    package var mode: UInt32
    /// Unix time, seconds.
    package var modified: Int64

    package init(name: String, type: String, size: UInt64, mode: UInt32, modified: Int64) {
        self.name = name
        self.type = type
        self.size = size
        self.mode = mode
        self.modified = modified
    }

    init(_ entry: FileEntry) {
        let type = switch entry.kind {
        case .file: "file"
        case .directory: "directory"
        case .symlink: "symlink"
        case .other: "other"
        }
        self.init(name: PrintableText.escaped(entry.name, maxScalars: FileEntry.maxNameBytes), type: type,
                  size: entry.sizeBytes, mode: entry.mode & 0o7777, modified: entry.modifiedSeconds)
    }
}

package enum GuestPath {
    /// `/a//b/./c/` → `/a/b/c`. Relative paths, `..`, control characters and overlong
    /// paths are refused: the API names guest paths from the guest's root and nothing else.
    package static func normalized(_ path: String) throws(MSBError) -> String {
        guard path.hasPrefix("/") else {
            throw MSBError(.invalidArgument, "guest path must be absolute: \(PrintableText.escaped(path, maxScalars: 200))")
        }
        guard !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }),
              path.utf8.count <= FileRequest.maxPathBytes else {
            throw MSBError(.invalidArgument, "invalid guest path: \(PrintableText.escaped(path, maxScalars: 200))")
        }
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            guard part != ".." else {
                throw MSBError(.invalidArgument, "guest path must not contain '..': \(PrintableText.escaped(path, maxScalars: 200))")
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}

/// Runs operations over one connection to the sandbox's agent (through its supervisor),
/// in requests of at most one frame, and checks every answer: the guest is not trusted
/// for a count, a length or a name.
package struct GuestFileClient {
    let sandbox: String
    /// Sends one request and returns its answer (with a deadline).
    let exchange: (FileRequest) throws(MSBError) -> FileReply

    package init(sandbox: String, exchange: @escaping (FileRequest) throws(MSBError) -> FileReply) {
        self.sandbox = sandbox
        self.exchange = exchange
    }

    package func perform(_ operation: GuestFileOperation) throws(MSBError) -> GuestFileResult {
        let path = try GuestPath.normalized(operation.path)
        let shown = "\(sandbox):\(path)"
        switch operation {
        case .read(_, let offset, let length):
            guard length >= 0, length <= GuestFileOperation.maxChunkBytes else {
                throw MSBError(.tooLarge, "cannot read \(shown): at most \(GuestFileOperation.maxChunkBytes) bytes per call")
            }
            var bytes: [UInt8] = []
            var size: UInt64 = 0
            while bytes.count < length {
                let (position, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
                guard !overflow else { break }
                let wanted = min(length - bytes.count, FileRequest.maxChunkBytes)
                let reply = try checked(FileRequest(.read, path: path, offset: position, length: UInt32(wanted)), "read", shown)
                guard reply.data.count <= wanted else { throw hostile("sent more bytes than asked for") }
                bytes += reply.data
                size = reply.total
                if reply.data.count < wanted { break }
            }
            if length == 0 { size = try checked(FileRequest(.read, path: path, offset: offset), "read", shown).total }
            return .contents(bytes, fileSizeBytes: size)
        case .write(_, let offset, let contents, let mode):
            guard contents.count <= GuestFileOperation.maxChunkBytes else {
                throw MSBError(.tooLarge, "cannot write \(shown): at most \(GuestFileOperation.maxChunkBytes) bytes per call")
            }
            var size: UInt64 = 0
            var done = 0
            repeat {
                let chunk = Array(contents[done..<min(contents.count, done + FileRequest.maxChunkBytes)])
                let (position, overflow) = offset.addingReportingOverflow(UInt64(done))
                guard !overflow else { throw MSBError(.tooLarge, "cannot write \(shown): offset out of range") }
                size = try checked(FileRequest(.write, path: path, offset: position, data: chunk, mode: mode ?? 0), "write", shown).total
                done += chunk.count
            } while done < contents.count
            return .written(fileSizeBytes: size)
        case .list:
            var entries: [GuestFileInfo] = []
            while true {
                let reply = try checked(FileRequest(.list, path: path, offset: UInt64(entries.count), length: UInt32(FileReply.maxEntries)),
                                        "list", shown)
                guard reply.total <= UInt64(GuestFileOperation.maxListEntries) else {
                    throw MSBError(.tooLarge, "cannot list \(shown): more than \(GuestFileOperation.maxListEntries) entries")
                }
                for entry in reply.entries {
                    guard !entry.name.isEmpty, !entry.name.contains("/"), entry.name != ".", entry.name != ".." else {
                        throw hostile("named a directory entry '\(PrintableText.escaped(entry.name, maxScalars: 100))'")
                    }
                    entries.append(GuestFileInfo(entry))
                }
                if reply.entries.isEmpty || entries.count >= Int(reply.total) { break }
                guard entries.count <= GuestFileOperation.maxListEntries else { throw hostile("sent more entries than it counted") }
            }
            return .entries(entries)
        case .stat:
            let reply = try checked(FileRequest(.stat, path: path), "stat", shown)
            guard reply.entries.count == 1, let entry = reply.entries.first else { throw hostile("answered stat without one entry") }
            return .info(GuestFileInfo(entry))
        case .makeDirectory(_, let parents):
            _ = try checked(FileRequest(.makeDirectory, path: path, recursive: parents), "create directory", shown)
            return .done
        case .remove(_, let recursive):
            guard path != "/" else { throw MSBError(.invalidArgument, "cannot remove \(shown): it is the guest's root") }
            _ = try checked(FileRequest(.remove, path: path, recursive: recursive), "remove", shown)
            return .done
        case .rename(_, let destination):
            let target = try GuestPath.normalized(destination)
            guard path != "/", target != "/" else { throw MSBError(.invalidArgument, "cannot move the guest's root") }
            _ = try checked(FileRequest(.rename, path: path, destination: target), "move", "\(shown) to \(target)")
            return .done
        }
    }

    private func checked(_ request: FileRequest, _ verb: String, _ shown: String) throws(MSBError) -> FileReply {
        let reply = try exchange(request)
        guard let kind = reply.error else { return reply }
        throw Self.error(kind, guestText: reply.message, "cannot \(verb) \(shown)")
    }

    private func hostile(_ what: String) -> MSBError {
        MSBError(.agentFailure, "the guest agent of sandbox \(sandbox) \(what)", hint: "the guest may be compromised; restart the sandbox")
    }

    /// The one mapping of the guest's error kinds to error codes (and so to exit codes and
    /// JSON-RPC codes, through the one table). The guest's text is shown escaped and cut.
    static func error(_ kind: FileErrorKind, guestText: String, _ what: String) -> MSBError {
        switch kind {
        case .notFound: MSBError(.notFound, "\(what): no such file or directory")
        case .isADirectory: MSBError(.isADirectory, "\(what): is a directory", hint: "use 'msb fs ls' for a directory")
        case .notADirectory: MSBError(.notADirectory, "\(what): not a directory")
        case .permission: MSBError(.permissionDenied, "\(what): permission denied")
        case .exists: MSBError(.alreadyExists, "\(what): file exists")
        case .tooLarge: MSBError(.tooLarge, "\(what): too large")
        case .notEmpty: MSBError(.invalidState, "\(what): directory not empty", hint: "remove it with -r")
        case .notRegularFile: MSBError(.invalidArgument, "\(what): not a regular file")
        case .invalidPath: MSBError(.invalidArgument, "\(what): invalid guest path")
        case .failed: MSBError(.agentFailure, "\(what): \(PrintableText.escaped(guestText, maxScalars: 200))")
        }
    }
}
