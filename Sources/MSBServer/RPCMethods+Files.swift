import Foundation
import MSBClient
import MSBCore

/// `sandbox.fs.*`: the Files API. Every path names the sandbox's guest file system (the
/// agent does the work in the guest); file bytes travel base64-encoded, at most
/// `GuestFileOperation.maxChunkBytes` per call, so no call holds more than that.
extension RPCDispatcher {
    func fsRead(_ call: RPCCall, _ p: RPC.FsRead.Params) throws(MSBError) -> RPC.FsRead.Result {
        let (backend, name, path) = try target(call, p.sandbox, p.namespace, p.path)
        let offset = try RPCParams.wholeNumber(p.offset, "offset", in: 0...(1 << 53)) ?? 0
        let length = try RPCParams.wholeNumber(p.length, "length", in: 0...GuestFileOperation.maxChunkBytes)
            ?? GuestFileOperation.maxChunkBytes
        guard case .contents(let bytes, let size) = try backend.fileOperation(name, .read(path: path, offset: UInt64(offset), length: length)) else {
            throw MSBError(.internalError, "sandbox.fs.read got no contents")
        }
        let end = UInt64(offset) + UInt64(bytes.count)
        return .init(path: path, content: Data(bytes).base64EncodedString(), size: size, eof: bytes.count < length || end >= size)
    }

    func fsWrite(_ call: RPCCall, _ p: RPC.FsWrite.Params) throws(MSBError) -> RPC.FsWrite.Result {
        let (backend, name, path) = try target(call, p.sandbox, p.namespace, p.path)
        let offset = try RPCParams.wholeNumber(p.offset, "offset", in: 0...(1 << 53)) ?? 0
        let mode = try RPCParams.wholeNumber(p.mode, "mode", in: 0...0o7777)
        // Checked before decoding: base64 is 4 bytes per 3.
        guard p.content.utf8.count <= (GuestFileOperation.maxChunkBytes + 2) / 3 * 4 else {
            throw MSBError(.tooLarge, "content is over \(GuestFileOperation.maxChunkBytes) bytes",
                           hint: "write a larger file in parts with 'offset'")
        }
        guard let bytes = Data(base64Encoded: p.content) else { throw RPCParams.invalid("content", "base64") }
        let operation = GuestFileOperation.write(path: path, offset: UInt64(offset), contents: Array(bytes), mode: mode.map { UInt32($0) })
        guard case .written(let size) = try backend.fileOperation(name, operation) else {
            throw MSBError(.internalError, "sandbox.fs.write got no size")
        }
        return .init(path: path, size: size)
    }

    func fsList(_ call: RPCCall, _ p: RPC.FilePathParams) throws(MSBError) -> RPC.FsList.Result {
        let (backend, name, path) = try target(call, p.sandbox, p.namespace, p.path)
        guard case .entries(let entries) = try backend.fileOperation(name, .list(path: path)) else {
            throw MSBError(.internalError, "sandbox.fs.list got no entries")
        }
        return .init(path: path, entries: entries)
    }

    func fsStat(_ call: RPCCall, _ p: RPC.FilePathParams) throws(MSBError) -> GuestFileInfo {
        let (backend, name, path) = try target(call, p.sandbox, p.namespace, p.path)
        guard case .info(let info) = try backend.fileOperation(name, .stat(path: path)) else {
            throw MSBError(.internalError, "sandbox.fs.stat got no entry")
        }
        return info
    }

    func fsMkdir(_ call: RPCCall, _ p: RPC.FsMkdir.Params) throws(MSBError) -> RPC.FilePathResult {
        let (backend, name, path) = try target(call, p.sandbox, p.namespace, p.path)
        _ = try backend.fileOperation(name, .makeDirectory(path: path, parents: p.parents ?? false))
        return .init(path: path)
    }

    func fsRemove(_ call: RPCCall, _ p: RPC.FsRemove.Params) throws(MSBError) -> RPC.FilePathResult {
        let (backend, name, path) = try target(call, p.sandbox, p.namespace, p.path)
        _ = try backend.fileOperation(name, .remove(path: path, recursive: p.recursive ?? false))
        return .init(path: path)
    }

    func fsRename(_ call: RPCCall, _ p: RPC.FsRename.Params) throws(MSBError) -> RPC.FsRename.Result {
        let (backend, name, path) = try target(call, p.sandbox, p.namespace, p.path)
        let destination = try Self.guestPath(p.destination, "destination")
        _ = try backend.fileOperation(name, .rename(path: path, destination: destination))
        return .init(path: path, destination: destination)
    }

    /// The namespace's backend, the sandbox and the guest path, each checked first.
    private func target(_ call: RPCCall, _ sandbox: String, _ namespace: String?, _ path: String)
        throws(MSBError) -> (any SandboxBackend, String, String) {
        let namespace = try call.namespace(namespace)
        let name = try RPCParams.sandbox(sandbox)
        let path = try Self.guestPath(path, "path")
        return (try host.sandboxes(namespace), name, path)
    }

    private static func guestPath(_ path: String, _ key: String) throws(MSBError) -> String {
        do { return try GuestPath.normalized(path) } catch {
            throw RPCParams.invalid(key, "an absolute guest path without '..' (\(error.message))")
        }
    }
}
