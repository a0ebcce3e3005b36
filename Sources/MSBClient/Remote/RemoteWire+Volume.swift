import Foundation
import MSBCore

extension RemoteWire {
    /// One named volume, as `volume.*` return it and `msb volume ls/inspect --format json`
    /// print it. `host_path` only for a local user: a server never sends it.
    package struct Volume: Codable, Equatable, Sendable {
        package var name: String
        package var namespace: String
        package var created_at: String
        package var host_path: String?
        package var size_bytes: Int64?
        /// The sandboxes whose config mounts it.
        package var used_by: [String]

        package init(_ info: VolumeInfo) {
            name = info.name
            namespace = info.namespace
            created_at = RemoteWire.iso8601(info.createdAt)
            host_path = info.hostPath
            size_bytes = info.sizeBytes
            used_by = info.usedBy
        }

        package var info: VolumeInfo {
            VolumeInfo(name: name, namespace: namespace, createdAt: RemoteWire.date(created_at) ?? Date(timeIntervalSince1970: 0),
                       hostPath: host_path, sizeBytes: size_bytes, usedBy: used_by)
        }
    }
}

extension RPC {
    /// A named volume of a namespace.
    package struct VolumeParams: Codable, Sendable {
        package var volume: String
        package var namespace: String?
        package init(volume: String, namespace: String?) {
            self.volume = volume
            self.namespace = namespace
        }
    }

    package struct VolumeResult: Codable, Sendable {
        package var volume: RemoteWire.Volume
        package init(_ info: VolumeInfo) { volume = RemoteWire.Volume(info) }
    }

    /// Named volumes of a namespace (`msb volume`).
    package enum VolumeCreate: RPCMethodType {
        package static let name = "volume.create"
        package typealias Params = VolumeParams
        package typealias Result = VolumeResult
    }

    package enum VolumeList: RPCMethodType {
        package static let name = "volume.list"
        package typealias Params = NamespaceParams
        package struct Result: Codable, Sendable {
            package var volumes: [RemoteWire.Volume]
            package init(_ infos: [VolumeInfo]) { volumes = infos.map(RemoteWire.Volume.init) }
        }
    }

    package enum VolumeInspect: RPCMethodType {
        package static let name = "volume.inspect"
        package typealias Params = VolumeParams
        package typealias Result = VolumeResult
    }

    /// Refused (invalidState) while a sandbox of the namespace mounts it.
    package enum VolumeRemove: RPCMethodType {
        package static let name = "volume.remove"
        package typealias Params = VolumeParams
        package typealias Result = String
    }
}
