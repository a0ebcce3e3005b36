/// The Files API on the wire (protocol 6): one `fileRequest` is answered by one
/// `fileReply` with the same id. The agent performs each operation itself on the guest's
/// own file system (absolute guest paths; it is chrooted into the guest's root), with no
/// state kept between requests: a large file travels as many ranged requests, each
/// answer within one frame.
package struct FileRequest: Equatable, Sendable {
    package enum Operation: UInt8, Sendable {
        case read = 1
        case write = 2
        case list = 3
        case stat = 4
        case makeDirectory = 5
        case remove = 6
        case rename = 7
    }

    /// The most file bytes one request or answer carries (well under `Frame.maxPayloadBytes`).
    package static let maxChunkBytes = 512 * 1024
    /// Guest paths are at most this long (Linux's PATH_MAX).
    package static let maxPathBytes = 4096

    package var operation: Operation
    package var path: String
    /// `rename`'s destination; empty otherwise.
    package var destination: String
    /// `read`/`write`: the byte offset; `list`: the index of the first entry wanted.
    package var offset: UInt64
    /// `read`: bytes wanted (at most `maxChunkBytes`); `list`: entries wanted (at most
    /// `FileReply.maxEntries`).
    package var length: UInt32
    /// `write`: the bytes (at most `maxChunkBytes`). Offset 0 creates or truncates the file.
    package var data: [UInt8]
    /// `write` (a new file) and `makeDirectory`: permission bits; 0 keeps the default.
    package var mode: UInt32
    /// `remove`: the whole tree; `makeDirectory`: parents too, an existing directory is fine.
    package var recursive: Bool

    package init(_ operation: Operation, path: String, destination: String = "", offset: UInt64 = 0, length: UInt32 = 0,
                 data: [UInt8] = [], mode: UInt32 = 0, recursive: Bool = false) {
        self.operation = operation
        self.path = path
        self.destination = destination
        self.offset = offset
        self.length = length
        self.data = data
        self.mode = mode
        self.recursive = recursive
    }
}

/// Why a file operation failed, as the guest's kernel said it (errno, classified).
package enum FileErrorKind: UInt8, Sendable {
    case notFound = 1
    case isADirectory = 2
    case notADirectory = 3
    case permission = 4
    case exists = 5
    case tooLarge = 6
    case notEmpty = 7
    /// A FIFO, socket or device: never opened for reading or writing (it could block the agent).
    case notRegularFile = 8
    case invalidPath = 9
    case failed = 10
}

/// One directory entry or `stat` result (the link itself for a symbolic link).
package struct FileEntry: Equatable, Sendable {
    package enum Kind: UInt8, Sendable {
        case file = 1
        case directory = 2
        case symlink = 3
        case other = 4
    }
    package static let maxNameBytes = 255

    package var name: String
    package var kind: Kind
    package var sizeBytes: UInt64
    /// Permission bits (st_mode & 07777).
    package var mode: UInt32
    /// Last modification, Unix time in seconds.
    package var modifiedSeconds: Int64

    package init(name: String, kind: Kind, sizeBytes: UInt64, mode: UInt32, modifiedSeconds: Int64) {
        self.name = name
        self.kind = kind
        self.sizeBytes = sizeBytes
        self.mode = mode
        self.modifiedSeconds = modifiedSeconds
    }
}

package struct FileReply: Equatable, Sendable {
    /// Entries in one `list` answer: 1000 names of at most 255 bytes fit a frame.
    package static let maxEntries = 1000

    /// nil: the operation succeeded.
    package var error: FileErrorKind?
    /// The guest's own words for a failure (untrusted text: shown escaped and cut).
    package var message: String
    /// `read`: the bytes at the offset asked for.
    package var data: [UInt8]
    /// `list`: entries from the index asked for; `stat`: one entry.
    package var entries: [FileEntry]
    /// `read`: the file's size; `list`: the directory's entry count.
    package var total: UInt64

    package init(error: FileErrorKind? = nil, message: String = "", data: [UInt8] = [], entries: [FileEntry] = [], total: UInt64 = 0) {
        self.error = error
        self.message = message
        self.data = data
        self.entries = entries
        self.total = total
    }

    package static func failure(_ kind: FileErrorKind, _ message: String) -> FileReply { FileReply(error: kind, message: message) }
}

extension FileRequest {
    func encode(into w: inout WireWriter) {
        w.u8(operation.rawValue); w.string(path); w.string(destination); w.u64(offset); w.u32(length)
        w.data(data); w.u32(mode); w.bool(recursive)
    }

    static func decode(from r: inout WireReader) throws(ProtocolError) -> FileRequest {
        guard let operation = Operation(rawValue: try r.u8()) else { throw .malformed("bad file operation") }
        let path = try r.string(), destination = try r.string(), offset = try r.u64(), length = try r.u32()
        let data = try r.data()
        guard data.count <= maxChunkBytes else { throw .malformed("file chunk too large") }
        return FileRequest(operation, path: path, destination: destination, offset: offset, length: length,
                           data: data, mode: try r.u32(), recursive: try r.bool())
    }
}

extension FileReply {
    func encode(into w: inout WireWriter) {
        w.u8(error?.rawValue ?? 0); w.string(message); w.data(data)
        w.u32(UInt32(clamping: entries.count))
        for entry in entries {
            w.string(entry.name); w.u8(entry.kind.rawValue); w.u64(entry.sizeBytes); w.u32(entry.mode)
            w.u64(UInt64(bitPattern: entry.modifiedSeconds))
        }
        w.u64(total)
    }

    /// Counts and lengths are bounded here: a guest cannot make the host allocate more
    /// than one frame's worth, whatever it claims.
    static func decode(from r: inout WireReader) throws(ProtocolError) -> FileReply {
        let code = try r.u8()
        var reply = FileReply()
        if code != 0 {
            guard let kind = FileErrorKind(rawValue: code) else { throw .malformed("bad file error kind") }
            reply.error = kind
        }
        reply.message = try r.string()
        reply.data = try r.data()
        guard reply.data.count <= FileRequest.maxChunkBytes else { throw .malformed("file chunk too large") }
        let count = try r.u32()
        guard count <= FileReply.maxEntries else { throw .malformed("too many directory entries") }
        for _ in 0..<count {
            let name = try r.string()
            guard let kind = FileEntry.Kind(rawValue: try r.u8()) else { throw .malformed("bad file kind") }
            reply.entries.append(FileEntry(name: name, kind: kind, sizeBytes: try r.u64(), mode: try r.u32(),
                                           modifiedSeconds: Int64(bitPattern: try r.u64())))
        }
        reply.total = try r.u64()
        return reply
    }
}
