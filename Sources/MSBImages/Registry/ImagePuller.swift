import Crypto
import Foundation
import MSBArchive
import MSBCore
import MSBOS
import NIOCore

/// `msb pull`: resolves a reference to a linux/amd64 manifest, streams the config and the
/// layers to disk (a few at a time, each hashed as it arrives and kept in the blob cache
/// only once its digest matched), applies the layers in a work directory of its own and
/// stores the image under its manifest digest (see ImageStore).
///
/// The registry is an attacker: every digest is checked before it names a file, and
/// manifests, configs, layer counts and blob sizes are bounded (`PullLimits`).
package struct ImagePuller: Sendable {
    static let manifestTypes = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]

    let store: ImageStore
    let limits: PullLimits
    let progress: @Sendable (String) -> Void

    package init(store: ImageStore, limits: PullLimits = PullLimits(), progress: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.limits = limits
        self.progress = progress
    }

    var blobDirectory: String { store.directory + "/.blobs/sha256" }
    func blobPath(_ digest: ContentDigest) -> String { blobDirectory + "/" + digest.hex }

    /// `replaceExisting` false: a name that is already an image is left as it is (a server's
    /// namespace keys may add images but not move a name every tenant shares).
    package func pull(_ text: String, insecure: Bool, credentials: String?, replaceExisting: Bool = true) throws(MSBError) -> ImageInfo {
        let reference = try ImageReference.parse(text)
        if !replaceExisting, let existing = try? store.get(text), existing.kind == "disk" {
            progress("image \(existing.name) is already here; only an administrator can replace it")
            return existing
        }
        let client = RegistryClient(image: reference, insecure: insecure, credentials: credentials)
        var data = try client.get("/manifests/\(reference.reference)", accept: Self.manifestTypes, maxBytes: limits.manifestBytes).body
        if reference.isDigest { try Self.verify(data, digest: reference.reference, what: "manifest") }
        var manifest = try Self.json(data, what: "manifest")
        var manifestDigest = reference.isDigest ? try ContentDigest.parse(reference.reference, what: "manifest") : ContentDigest.of(data)
        if manifest["manifests"] != nil {
            let entries = manifest["manifests"] as? [[String: Any]] ?? []
            guard let chosen = entries.first(where: {
                let platform = $0["platform"] as? [String: Any]
                return platform?["os"] as? String == "linux" && platform?["architecture"] as? String == "amd64"
            }), let digestText = chosen["digest"] as? String else {
                throw MSBError(.notFound, "\(reference) has no linux/amd64 image")
            }
            manifestDigest = try ContentDigest.parse(digestText, what: "manifest")
            data = try client.get("/manifests/\(manifestDigest)", accept: Self.manifestTypes, maxBytes: limits.manifestBytes).body
            try Self.verify(data, digest: manifestDigest.description, what: "manifest")
            manifest = try Self.json(data, what: "manifest")
        }
        guard let config = manifest["config"] as? [String: Any], let configText = config["digest"] as? String,
              let layers = manifest["layers"] as? [[String: Any]] else {
            throw MSBError(.invalidArgument, "\(reference): unsupported manifest")
        }
        // Every digest is checked before anything is fetched: a bad one refuses the whole image.
        let configDigest = try ContentDigest.parse(configText, what: "config")
        guard layers.count <= limits.layerCount else {
            throw MSBError(.invalidArgument, "\(reference) has \(layers.count) layers; the limit is \(limits.layerCount)",
                           hint: "raise it with MSB_PULL_MAX_LAYERS")
        }
        var layerList: [(digest: ContentDigest, mediaType: String)] = []
        for layer in layers {
            guard let text = layer["digest"] as? String else { throw MSBError(.invalidArgument, "\(reference): a layer has no digest") }
            layerList.append((try ContentDigest.parse(text, what: "layer"), (layer["mediaType"] as? String) ?? "application/vnd.oci.image.layer.v1.tar+gzip"))
        }
        if let stored = store.stored(manifestDigest) {
            progress("image \(manifestDigest.description.prefix(19)) is stored already")
            try store.point(text, at: manifestDigest)
            var info = stored
            info.name = text
            return info
        }

        let configPath = try fetchBlob(client, digest: configDigest, label: "config", maxBytes: limits.configBytes)
        guard let configData = FileDescriptorIO.readFile(configPath, limitBytes: limits.configBytes) else {
            throw MSBError(.stateStore, "cannot read the image config of \(reference)")
        }
        let imageConfig = (try Self.json(Data(configData), what: "config")["config"] as? [String: Any]) ?? [:]
        try fetchLayers(client, layerList.map(\.digest))

        let work = try store.makeWorkDirectory("pull")
        defer { try? FileManager.default.removeItem(atPath: work) }
        guard mkdir(work + "/rootfs", 0o755) == 0 else {
            throw MSBError(.stateStore, "cannot create the image's work directory: \(String(cString: strerror(errno)))")
        }
        var applier = LayerApplier(root: work + "/rootfs", limits: limits.extraction)
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
            digest: manifestDigest, source: "pulled from \(reference)")
        if applier.skippedEntries > 0 { progress("skipped \(applier.skippedEntries) entries (device nodes, FIFOs, sockets)") }
        return info
    }

    /// Fetches the layers not cached yet, `limits.concurrentDownloads` at a time; the first
    /// failure stops the rest from starting.
    private func fetchLayers(_ client: RegistryClient, _ digests: [ContentDigest]) throws(MSBError) {
        let failures = FailureBox()
        let next = WorkCounter()
        DispatchQueue.concurrentPerform(iterations: min(max(1, limits.concurrentDownloads), max(1, digests.count))) { _ in
            while failures.first == nil, let index = next.take(below: digests.count) {
                do {
                    _ = try fetchBlob(client, digest: digests[index], label: "layer \(index + 1)/\(digests.count)", maxBytes: limits.layerBytes)
                } catch {
                    failures.record(MSBError.wrap(error, .internalError, "cannot fetch layer \(index + 1)"))
                }
            }
        }
        if let failure = failures.first { throw failure }
    }

    /// The blob from the cache, or streamed to a temporary file while hashed, and cached
    /// under its digest only if the digest matched. A cached blob is trusted by construction:
    /// nothing else writes into the cache (0700), and names are only ever valid digests.
    private func fetchBlob(_ client: RegistryClient, digest: ContentDigest, label: String, maxBytes: Int) throws(MSBError) -> String {
        let path = blobPath(digest)
        if access(path, F_OK) == 0 {
            progress("\(label) \(digest.description.prefix(19)): cached")
            return path
        }
        try? FileManager.default.createDirectory(atPath: blobDirectory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        let sink = try BlobSink(directory: blobDirectory)
        defer { sink.discard() }
        try client.download("/blobs/\(digest)", maxBytes: maxBytes) { buffer in try sink.write(buffer) }
        let (actual, bytes) = sink.finish()
        guard actual == digest else {
            throw MSBError(.integrity, "\(label) digest mismatch: expected \(digest), got \(actual); nothing was kept")
        }
        try sink.keep(as: path)
        progress("\(label) \(digest.description.prefix(19)): \(bytes) bytes")
        return path
    }

    static func verify(_ data: [UInt8], digest expected: String, what: String) throws(MSBError) {
        let actual = ContentDigest.of(data).description
        guard actual == expected else {
            throw MSBError(.integrity, "\(what) digest mismatch: expected \(expected), got \(actual); nothing was kept")
        }
    }

    static func json(_ data: some DataProtocol, what: String) throws(MSBError) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            throw MSBError(.invalidArgument, "the registry sent an invalid \(what)")
        }
        return object
    }
}

/// Limits on what one pull takes from a registry; the environment can raise them.
package struct PullLimits: Sendable {
    package var manifestBytes = 4 << 20
    package var configBytes = 8 << 20
    package var layerCount = 128
    /// One compressed layer (what is extracted from it is the layer applier's to bound).
    package var layerBytes = 8 << 30
    package var concurrentDownloads = 3
    /// What the layers may unpack to, all of one image together (entries, bytes).
    package var extraction = ArchiveLimits.layers

    package init() {}

    /// `MSB_PULL_MAX_LAYERS`, `MSB_PULL_MAX_LAYER_MIB`, `MSB_PULL_CONCURRENCY`,
    /// `MSB_PULL_MAX_UNPACKED_MIB`, `MSB_PULL_MAX_ENTRIES`.
    package init(environment: [String: String]) {
        func number(_ name: String, _ range: ClosedRange<Int>) -> Int? {
            environment[name].flatMap { Int($0, radix: 10) }.flatMap { range.contains($0) ? $0 : nil }
        }
        if let layers = number("MSB_PULL_MAX_LAYERS", 1...4096) { layerCount = layers }
        if let mib = number("MSB_PULL_MAX_LAYER_MIB", 1...(1 << 24)) { layerBytes = mib << 20 }
        if let concurrency = number("MSB_PULL_CONCURRENCY", 1...16) { concurrentDownloads = concurrency }
        if let mib = number("MSB_PULL_MAX_UNPACKED_MIB", 1...(1 << 30)) { extraction.maxTotalBytes = Int64(truncatingIfNeeded: mib) << 20 }  // at most 2^50
        if let entries = number("MSB_PULL_MAX_ENTRIES", 1...100_000_000) { extraction.maxEntries = entries }
    }
}

/// A blob on its way into the cache: a private temporary file and the running hash.
final class BlobSink: @unchecked Sendable {
    private let fd: Int32
    private let temporaryPath: String
    private var hasher = SHA256()
    private var bytes = 0
    private var kept = false

    init(directory: String) throws(MSBError) {
        var template = Array("\(directory)/.part-XXXXXX".utf8CString)
        var made: String?
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            let fd = mkstemp(base)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                made = String(cString: base)
            }
            return fd
        }
        guard fd >= 0, let made else { throw MSBError(.stateStore, "cannot create a blob file: \(String(cString: strerror(errno)))") }
        self.fd = fd
        temporaryPath = made
    }

    func write(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { raw in
            hasher.update(bufferPointer: raw)
            try FileDescriptorIO.writeAll(fd, Array(raw))
        }
        bytes += buffer.readableBytes
    }

    func finish() -> (ContentDigest, Int) { (ContentDigest(hashed: hasher.finalize()), bytes) }

    func keep(as path: String) throws(MSBError) {
        guard fsync(fd) == 0, rename(temporaryPath, path) == 0 else {
            throw MSBError(.stateStore, "cannot store a blob: \(String(cString: strerror(errno)))")
        }
        kept = true
    }

    func discard() {
        close(fd)
        if !kept { unlink(temporaryPath) }
    }
}

/// Hands out 0, 1, 2, ... to concurrent workers.
final class WorkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take(below limit: Int) -> Int? {
        lock.withLock {
            guard value < limit else { return nil }
            defer { value += 1 }
            return value
        }
    }
}

final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [MSBError] = []
    func record(_ error: MSBError) { lock.withLock { failures.append(error) } }
    var first: MSBError? { lock.withLock { failures.first } }
}
