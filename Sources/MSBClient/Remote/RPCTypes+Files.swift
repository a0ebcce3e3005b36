import Foundation
import MSBCore

/// `sandbox.fs.*`: the Files API on the wire (docs/REMOTE.md). Paths are the guest's;
/// file bytes travel base64-encoded, at most `GuestFileOperation.maxChunkBytes` per call.
/// Numbers are JSON numbers, checked by the server to be whole and in range.
extension RPC {
    package struct FilePathParams: Codable, Sendable {
        package var sandbox: String
        package var namespace: String?
        package var path: String
        package init(sandbox: String, namespace: String?, path: String) {
            self.sandbox = sandbox
            self.namespace = namespace
            self.path = path
        }
    }

    package struct FilePathResult: Codable, Sendable {
        package var path: String
        package init(path: String) { self.path = path }
    }

    package enum FsRead: RPCMethodType {
        package static let name = "sandbox.fs.read"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            package var path: String
            /// Byte offset (default 0).
            package var offset: Double?
            /// Bytes wanted (default and at most `GuestFileOperation.maxChunkBytes`).
            package var length: Double?
        }
        package struct Result: Codable, Sendable {
            package var path: String
            /// base64.
            package var content: String
            /// The file's size in bytes.
            package var size: UInt64
            /// No bytes after these.
            package var eof: Bool
            package init(path: String, content: String, size: UInt64, eof: Bool) {
                self.path = path
                self.content = content
                self.size = size
                self.eof = eof
            }
        }
    }

    package enum FsWrite: RPCMethodType {
        package static let name = "sandbox.fs.write"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            package var path: String
            /// base64; at most `GuestFileOperation.maxChunkBytes` once decoded.
            package var content: String
            /// 0 or absent creates or truncates the file; more writes into it at that offset.
            package var offset: Double?
            /// Permission bits of a new file, as a number (420 = 0644).
            package var mode: Double?
        }
        package struct Result: Codable, Sendable {
            package var path: String
            /// The file's size after the write.
            package var size: UInt64
            package init(path: String, size: UInt64) {
                self.path = path
                self.size = size
            }
        }
    }

    package enum FsList: RPCMethodType {
        package static let name = "sandbox.fs.list"
        package typealias Params = FilePathParams
        package struct Result: Codable, Sendable {
            package var path: String
            package var entries: [GuestFileInfo]
            package init(path: String, entries: [GuestFileInfo]) {
                self.path = path
                self.entries = entries
            }
        }
    }

    package enum FsStat: RPCMethodType {
        package static let name = "sandbox.fs.stat"
        package typealias Params = FilePathParams
        package typealias Result = GuestFileInfo
    }

    package enum FsMkdir: RPCMethodType {
        package static let name = "sandbox.fs.mkdir"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            package var path: String
            /// Make missing parents too; an existing directory is fine.
            package var parents: Bool?
        }
        package typealias Result = FilePathResult
    }

    package enum FsRemove: RPCMethodType {
        package static let name = "sandbox.fs.remove"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            package var path: String
            /// Remove a directory with everything in it.
            package var recursive: Bool?
        }
        package typealias Result = FilePathResult
    }

    package enum FsRename: RPCMethodType {
        package static let name = "sandbox.fs.rename"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            package var path: String
            package var destination: String
        }
        package struct Result: Codable, Sendable {
            package var path: String
            package var destination: String
            package init(path: String, destination: String) {
                self.path = path
                self.destination = destination
            }
        }
    }
}

extension RemoteBackend {
    package func fileOperation(_ name: String, _ operation: GuestFileOperation) throws(MSBError) -> GuestFileResult {
        try InputParsing.validateName(name)
        let path = try GuestPath.normalized(operation.path)
        let namespace = endpoint.namespace
        switch operation {
        case .read(_, let offset, let length):
            guard length >= 0, length <= GuestFileOperation.maxChunkBytes else {
                throw MSBError(.tooLarge, "cannot read \(name):\(path): at most \(GuestFileOperation.maxChunkBytes) bytes per call")
            }
            let result = try call(RPC.FsRead.self, .init(sandbox: name, namespace: namespace, path: path,
                                                         offset: Double(offset), length: Double(length)))
            // Bounded before decoding: base64 is 4 bytes per 3.
            guard result.content.utf8.count <= (length + 2) / 3 * 4, let bytes = Data(base64Encoded: result.content),
                  bytes.count <= length else {
                throw MSBError(.agentFailure, "msb server at \(endpoint.url) answered sandbox.fs.read with more or other than asked for")
            }
            return .contents(Array(bytes), fileSizeBytes: result.size)
        case .write(_, let offset, let contents, let mode):
            let result = try call(RPC.FsWrite.self, .init(sandbox: name, namespace: namespace, path: path, content: Data(contents).base64EncodedString(),
                                                          offset: Double(offset), mode: mode.map(Double.init)))
            return .written(fileSizeBytes: result.size)
        case .list:
            let result = try call(RPC.FsList.self, .init(sandbox: name, namespace: namespace, path: path))
            guard result.entries.count <= GuestFileOperation.maxListEntries else {
                throw MSBError(.agentFailure, "msb server at \(endpoint.url) answered sandbox.fs.list with too many entries")
            }
            return .entries(result.entries)
        case .stat:
            return .info(try call(RPC.FsStat.self, .init(sandbox: name, namespace: namespace, path: path)))
        case .makeDirectory(_, let parents):
            _ = try call(RPC.FsMkdir.self, .init(sandbox: name, namespace: namespace, path: path, parents: parents))
            return .done
        case .remove(_, let recursive):
            _ = try call(RPC.FsRemove.self, .init(sandbox: name, namespace: namespace, path: path, recursive: recursive))
            return .done
        case .rename(_, let destination):
            _ = try call(RPC.FsRename.self, .init(sandbox: name, namespace: namespace, path: path,
                                                  destination: try GuestPath.normalized(destination)))
            return .done
        }
    }
}
