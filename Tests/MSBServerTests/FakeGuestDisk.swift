import Foundation
import MSBProtocol

/// A guest file system in memory that answers `FileRequest`s the way the agent does
/// (errors by kind, ranged reads and writes, paged listings), so the host's side of the
/// Files API (GuestFileClient, the RPC methods) runs for real without a VM.
final class FakeGuestDisk: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [String: [UInt8]] = [:]
    private var directories: Set<String> = ["/"]
    /// How many requests reached the "agent".
    private(set) var requestCount = 0

    func file(_ path: String) -> [UInt8]? { lock.withLock { files[path] } }

    private func parent(_ path: String) -> String {
        let parts = path.split(separator: "/").dropLast()
        return "/" + parts.joined(separator: "/")
    }

    private func children(_ path: String) -> [String] {
        let prefix = path == "/" ? "/" : path + "/"
        return (Array(files.keys) + Array(directories)).filter {
            $0 != "/" && $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/")
        }.sorted()
    }

    private func entry(_ path: String) -> FileEntry? {
        let name = path == "/" ? "/" : String(path.split(separator: "/").last ?? "")
        if directories.contains(path) { return FileEntry(name: name, kind: .directory, sizeBytes: 4096, mode: 0o755, modifiedSeconds: 1_700_000_000) }
        guard let bytes = files[path] else { return nil }
        return FileEntry(name: name, kind: .file, sizeBytes: UInt64(bytes.count), mode: 0o644, modifiedSeconds: 1_700_000_000)
    }

    func answer(_ request: FileRequest) -> FileReply {
        lock.lock()
        defer { lock.unlock() }
        requestCount += 1
        let path = request.path
        let notFound = FileReply.failure(.notFound, "No such file or directory")
        switch request.operation {
        case .read:
            if directories.contains(path) { return .failure(.isADirectory, "Is a directory") }
            guard let bytes = files[path] else { return notFound }
            let start = Int(min(request.offset, UInt64(bytes.count)))
            let end = min(bytes.count, start + min(Int(request.length), FileRequest.maxChunkBytes))
            return FileReply(data: Array(bytes[start..<end]), total: UInt64(bytes.count))
        case .write:
            if directories.contains(path) { return .failure(.isADirectory, "Is a directory") }
            guard directories.contains(parent(path)) else { return notFound }
            var bytes = request.offset == 0 ? [] : files[path] ?? []
            guard request.offset == 0 || files[path] != nil else { return notFound }
            let start = Int(min(request.offset, UInt64(bytes.count)))
            bytes.replaceSubrange(start..<min(bytes.count, start + request.data.count), with: request.data)
            files[path] = bytes
            return FileReply(total: UInt64(bytes.count))
        case .list:
            guard directories.contains(path) else { return files[path] == nil ? notFound : .failure(.notADirectory, "Not a directory") }
            let names = children(path)
            let first = Int(min(request.offset, UInt64(names.count)))
            let last = min(names.count, first + min(Int(request.length), FileReply.maxEntries))
            return FileReply(entries: names[first..<last].compactMap(entry), total: UInt64(names.count))
        case .stat:
            guard let entry = entry(path) else { return notFound }
            return FileReply(entries: [entry])
        case .makeDirectory:
            guard !directories.contains(path), files[path] == nil else { return .failure(.exists, "File exists") }
            guard directories.contains(parent(path)) else { return notFound }
            directories.insert(path)
            return FileReply()
        case .remove:
            if files.removeValue(forKey: path) != nil { return FileReply() }
            guard directories.contains(path) else { return notFound }
            let inside = (Array(files.keys) + Array(directories)).filter { $0.hasPrefix(path + "/") }
            guard inside.isEmpty || request.recursive else { return .failure(.notEmpty, "Directory not empty") }
            for item in inside { files[item] = nil; directories.remove(item) }
            directories.remove(path)
            return FileReply()
        case .rename:
            guard let bytes = files.removeValue(forKey: path) else { return notFound }
            files[request.destination] = bytes
            return FileReply()
        }
    }
}
