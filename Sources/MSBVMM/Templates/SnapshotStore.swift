import Foundation
import MSBCore
import MSBOS

/// What a snapshot records besides its saved guest: what `snapshot ls` shows, the config
/// of the sandbox it was taken from (forks inherit its environment, directory and user),
/// and the snapshot whose disk layer lies under this one's (when the source was a fork).
package struct SnapshotRecord: Codable, Equatable, Sendable {
    package var info: SnapshotInfo
    package var config: SandboxConfig
    package var parent: String?

    package init(info: SnapshotInfo, config: SandboxConfig, parent: String?) {
        self.info = info
        self.config = config
        self.parent = parent
    }
}

/// What the supervisor of the snapshotted sandbox knew that the guest's memory does not
/// say, written by it into the snapshot (`guest.json`): the VM's inputs (a snapshot only
/// restores on the same kernel, initramfs and QEMU), its REPL interpreters (running in the
/// guest, adopted by each fork's supervisor), and which request ids are taken.
package struct SavedGuestState: Codable, Equatable, Sendable {
    package struct Interpreter: Codable, Equatable, Sendable {
        package var language: String
        package var execId: UInt32
        package var nonce: String

        package init(language: String, execId: UInt32, nonce: String) {
            self.language = language
            self.execId = execId
            self.nonce = nonce
        }
    }

    package var inputs: TemplateInputs
    package var interpreters: [Interpreter]
    /// The first request id a fork's supervisor may use (the guest still runs the others).
    package var nextRequestId: UInt32
    /// Commands that had a client when the snapshot was taken: a fork ends them (nobody
    /// there waits for them). Detached and background processes run on.
    package var abandonedExecIds: [UInt32]

    package init(inputs: TemplateInputs, interpreters: [Interpreter], nextRequestId: UInt32, abandonedExecIds: [UInt32]) {
        self.inputs = inputs
        self.interpreters = interpreters
        self.nextRequestId = nextRequestId
        self.abandonedExecIds = abandonedExecIds
    }
}

/// Named snapshots under `$MSB_HOME/snapshots` (one per server namespace). A snapshot is a
/// template (memory file, device state; restored the same way, through a keeper) plus the
/// sandbox's disk as it was: `disk.qcow2`, a layer whose backing is the image (or the
/// parent snapshot's layer), under every fork's own overlay. Made whole in a `.tmp-*` work
/// directory and renamed into place, so a snapshot directory that exists is complete.
package struct SnapshotStore: Sendable {
    static let diskFile = "disk.qcow2"
    static let recordFile = "snapshot.json"
    static let guestFile = "guest.json"
    /// Snapshots of forks of snapshots: deeper chains are refused (each layer is one more
    /// descriptor QEMU inherits, and spawning passes at most 13).
    package static let maxDiskLayers = 4

    package let directory: String

    package init(directory: String) {
        self.directory = directory
    }

    /// Locks, work directories and removal are a template store's, keyed by name.
    package var templates: TemplateStore { TemplateStore(directory: directory) }

    package func path(_ name: String) -> String { directory + "/" + name }
    package func diskLayer(_ name: String) -> String { path(name) + "/" + Self.diskFile }
    package func exists(_ name: String) -> Bool { access(path(name) + "/" + Self.recordFile, F_OK) == 0 }

    package func record(_ name: String) throws(MSBError) -> SnapshotRecord {
        try InputParsing.validateSnapshotName(name)
        guard let data = FileDescriptorIO.readFile(path(name) + "/" + Self.recordFile, limitBytes: 1 << 20) else {
            throw MSBError.snapshotNotFound(name)
        }
        guard let record = try? JSONDecoder.msb.decode(SnapshotRecord.self, from: Data(data)) else {
            throw MSBError(.integrity, "snapshot \(name) is damaged (its record does not parse)", hint: "remove it with 'msb snapshot rm \(name)'")
        }
        return record
    }

    /// The guest state its supervisor saved, checked against what a fork will boot with.
    package func guestState(_ name: String) throws(MSBError) -> SavedGuestState {
        guard let data = FileDescriptorIO.readFile(path(name) + "/" + Self.guestFile, limitBytes: 1 << 20),
              let state = try? JSONDecoder().decode(SavedGuestState.self, from: Data(data)) else {
            throw MSBError(.integrity, "snapshot \(name) is damaged (its guest state is missing)", hint: "remove it with 'msb snapshot rm \(name)'")
        }
        return state
    }

    /// Every complete snapshot, by name.
    package func list() -> [SnapshotRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") && exists($0) }.compactMap { try? record($0) }
    }

    /// Disk space the snapshot takes: allocated blocks of its files.
    package func sizeBytes(_ name: String) -> Int64 {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path(name))) ?? []
        return files.reduce(0) { total, file in
            var info = stat()
            guard lstat(path(name) + "/" + file, &info) == 0 else { return total }
            return total + Int64(info.st_blocks) * 512
        }
    }

    /// The disk layers under a fork of `name`, top first: this snapshot's, then its
    /// parent's, and so on; the image is below the last.
    package func diskLayers(_ name: String) throws(MSBError) -> [String] {
        var layers: [String] = []
        var next: String? = name
        while let current = next {
            guard layers.count < Self.maxDiskLayers else {
                throw MSBError(.invalidState, "snapshot \(name) lies on more than \(Self.maxDiskLayers) snapshots")
            }
            layers.append(diskLayer(current))
            next = try record(current).parent
        }
        return layers
    }

    /// Whether `path` is a work directory of this store (where a supervisor may be asked to
    /// save a snapshot): `.tmp-XXXXXX` directly inside it, a real directory, empty.
    package func isEmptyWorkDirectory(_ path: String) -> Bool {
        guard path.hasPrefix(directory + "/.tmp-") else { return false }
        let leaf = path.dropFirst(directory.count + 1)
        guard !leaf.contains("/"), leaf.count == ".tmp-XXXXXX".count else { return false }
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == geteuid() else { return false }
        return (try? FileManager.default.contentsOfDirectory(atPath: path))?.isEmpty ?? false
    }

    package func makeWorkDirectory() throws(MSBError) -> String { try templates.makeWorkDirectory() }

    /// Runs `body` holding the lock of snapshot `name` (its creation and removal).
    package func withLock<T>(_ name: String, _ body: () throws(MSBError) -> T) throws(MSBError) -> T {
        try templates.withBuildLock(key: name, timeoutSeconds: 120, body)
    }

    /// Records `record` in `work` and moves it into place as snapshot `name`.
    package func install(_ work: String, record: SnapshotRecord) throws(MSBError) {
        let encoder = JSONEncoder.msb
        guard let data = try? encoder.encode(record),
              FileManager.default.createFile(atPath: work + "/" + Self.recordFile, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw MSBError(.stateStore, "cannot record the snapshot")
        }
        guard !exists(record.info.name) else {
            throw MSBError(.alreadyExists, "snapshot \(record.info.name) already exists", hint: "remove it with 'msb snapshot rm \(record.info.name)' or pick another name")
        }
        // A directory without a record is a removal that did not finish.
        if access(path(record.info.name), F_OK) == 0 { templates.remove(key: record.info.name) }
        guard rename(work, path(record.info.name)) == 0 else {
            throw MSBError(.stateStore, "cannot install the snapshot: \(String(cString: strerror(errno)))")
        }
    }

    package func remove(_ name: String) {
        templates.remove(key: name)
        unlink(path(name) + ".lock")
    }
}
