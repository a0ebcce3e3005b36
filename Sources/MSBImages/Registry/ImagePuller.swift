import Foundation
import MSBCore
import MSBOS

/// `msb pull`: resolves a reference to a linux/amd64 manifest, fetches the config and
/// the layers (concurrently, each verified against its digest before it is kept in the
/// content-addressed blob cache shared by all images), applies the layers and writes
/// the image's read-only root disk.
package struct ImagePuller: Sendable {
    static let manifestTypes = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]

    let store: ImageStore
    let progress: @Sendable (String) -> Void

    package init(store: ImageStore, progress: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.progress = progress
    }

    var blobDirectory: String { store.directory + "/.blobs/sha256" }

    package func pull(_ text: String, insecure: Bool, credentials: String?) throws(MSBError) -> ImageInfo {
        let reference = try ImageReference.parse(text)
        let client = RegistryClient(image: reference, insecure: insecure, credentials: credentials)
        var response = try client.get("/manifests/\(reference.reference)", accept: Self.manifestTypes)
        var data = Data(response.body)
        if reference.isDigest { try Self.verify(data, digest: reference.reference, what: "manifest") }
        var manifest = try Self.json(data, what: "manifest")
        let type = (manifest["mediaType"] as? String) ?? response.header("Content-Type") ?? ""
        if type.contains("index") || type.contains("list") || manifest["manifests"] != nil {
            let entries = manifest["manifests"] as? [[String: Any]] ?? []
            guard let chosen = entries.first(where: {
                let platform = $0["platform"] as? [String: Any]
                return platform?["os"] as? String == "linux" && platform?["architecture"] as? String == "amd64"
            }), let digest = chosen["digest"] as? String else {
                throw MSBError(.notFound, "\(reference) has no linux/amd64 image")
            }
            response = try client.get("/manifests/\(digest)", accept: Self.manifestTypes)
            data = Data(response.body)
            try Self.verify(data, digest: digest, what: "manifest")
            manifest = try Self.json(data, what: "manifest")
        }
        guard let config = manifest["config"] as? [String: Any], let configDigest = config["digest"] as? String,
              let layers = manifest["layers"] as? [[String: Any]] else {
            throw MSBError(.invalidArgument, "\(reference): unsupported manifest (\(type))")
        }
        let configPath = try fetchBlob(client, digest: configDigest, label: "config")
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw MSBError(.stateStore, "cannot read the image config \(configPath)")
        }
        let imageConfig = (try Self.json(configData, what: "config")["config"] as? [String: Any]) ?? [:]

        let layerList: [(digest: String, mediaType: String)] = layers.compactMap {
            guard let digest = $0["digest"] as? String else { return nil }
            return (digest, ($0["mediaType"] as? String) ?? "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        let failures = FailureBox()
        DispatchQueue.concurrentPerform(iterations: layerList.count) { index in
            do {
                _ = try fetchBlob(client, digest: layerList[index].digest, label: "layer \(index + 1)/\(layerList.count)")
            } catch {
                failures.record(MSBError.wrap(error, .internalError, "cannot fetch layer \(index + 1)"))
            }
        }
        if let failure = failures.first { throw failure }

        let work = store.directory + "/.pull-\(getpid())"
        try? FileManager.default.removeItem(atPath: work)
        defer { try? FileManager.default.removeItem(atPath: work) }
        guard (try? FileManager.default.createDirectory(atPath: work + "/rootfs", withIntermediateDirectories: true)) != nil else {
            throw MSBError(.stateStore, "cannot create \(work)")
        }
        var applier = LayerApplier(root: work + "/rootfs")
        for (index, layer) in layerList.enumerated() {
            progress("applying layer \(index + 1)/\(layerList.count)")
            try applier.apply(layer: blobPath(layer.digest), mediaType: layer.mediaType)
        }
        let environment = imageConfig["Env"] as? [String] ?? []
        let workdir = imageConfig["WorkingDir"] as? String ?? ""
        let command = ((imageConfig["Entrypoint"] as? [String]) ?? []) + ((imageConfig["Cmd"] as? [String]) ?? [])
        let info = try RootDiskWriter(store: store, progress: progress).install(
            name: text, rootfs: work + "/rootfs", work: work, environment: environment,
            workingDirectory: workdir.isEmpty ? "/" : workdir, command: command,
            user: (imageConfig["User"] as? String).flatMap { $0.isEmpty ? nil : $0 },
            digest: reference.isDigest ? reference.reference : Self.digest(of: data), source: "pulled from \(reference)")
        if applier.skippedEntries > 0 { progress("skipped \(applier.skippedEntries) entries (device nodes, unsafe paths)") }
        return info
    }

    func blobPath(_ digest: String) -> String { blobDirectory + "/" + digest.replacingOccurrences(of: "sha256:", with: "") }

    /// The blob from the cache, or downloaded, verified and then cached.
    private func fetchBlob(_ client: RegistryClient, digest: String, label: String) throws(MSBError) -> String {
        guard digest.hasPrefix("sha256:"), digest.count == 71 else {
            throw MSBError(.invalidArgument, "unsupported digest \(digest)")
        }
        let path = blobPath(digest)
        if FileManager.default.fileExists(atPath: path) {
            progress("\(label) \(digest.prefix(19)): cached")
            return path
        }
        try? FileManager.default.createDirectory(atPath: blobDirectory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        let data = Data(try client.get("/blobs/\(digest)").body)
        // Nothing unverified is kept: a mismatch leaves no file behind.
        try Self.verify(data, digest: digest, what: label)
        let temporary = path + ".part-\(getpid())"
        do {
            try data.write(to: URL(fileURLWithPath: temporary))
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            if !FileManager.default.fileExists(atPath: path) { throw MSBError(.stateStore, "cannot store blob \(digest): \(error)") }
        }
        progress("\(label) \(digest.prefix(19)): \(data.count) bytes")
        return path
    }

    static func digest(of data: Data) -> String { "sha256:" + SHA256Digest.hex(data) }

    static func verify(_ data: Data, digest expected: String, what: String) throws(MSBError) {
        let actual = Self.digest(of: data)
        guard actual == expected else {
            throw MSBError(.integrity, "\(what) digest mismatch: expected \(expected), got \(actual); nothing was kept")
        }
    }

    static func json(_ data: Data, what: String) throws(MSBError) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw MSBError(.invalidArgument, "the registry sent an invalid \(what)")
        }
        return object
    }
}

final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [MSBError] = []
    func record(_ error: MSBError) { lock.lock(); failures.append(error); lock.unlock() }
    var first: MSBError? { lock.lock(); defer { lock.unlock() }; return failures.first }
}
