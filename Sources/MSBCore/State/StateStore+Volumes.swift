import Foundation

/// One row of the `volumes` table: a named volume whose data lies in
/// `MSBPaths.volumeDataDirectory(name)`.
package struct VolumeRecord: Equatable, Sendable {
    package var name: String
    package var createdAt: Date
}

/// Named volumes: a row in the `volumes` table and a directory `volumes/NAME` (0700)
/// holding `data` (0755). A volume exists when both do. Every change happens under the
/// database's write lock, and each step is one rename or one row, so a process killed at
/// any point leaves a row without its directory or a directory without its row: neither
/// is listed, and the next create of that name clears it.
extension StateStore {
    private static let pendingPrefix = ".new-"
    private static let trashPrefix = ".old-"

    package func volume(_ name: String) throws(MSBError) -> VolumeRecord? {
        guard VolumeMount.isValidVolumeName(name) else { return nil }
        guard let row = try db.query("SELECT name, created_at FROM volumes WHERE name = ?", [.text(name)]).first,
              directoryExists(volumeDirectory(name)) else { return nil }
        return VolumeRecord(name: name, createdAt: Date(timeIntervalSince1970: row[1].real ?? 0))
    }

    /// Complete volumes, by name.
    package func volumes() throws(MSBError) -> [VolumeRecord] {
        try db.query("SELECT name, created_at FROM volumes ORDER BY name").compactMap { row in
            guard row.count == 2, let name = row[0].text, VolumeMount.isValidVolumeName(name),
                  directoryExists(volumeDirectory(name)) else { return nil }
            return VolumeRecord(name: name, createdAt: Date(timeIntervalSince1970: row[1].real ?? 0))
        }
    }

    /// Creates volume `name`; `limit` caps how many this home keeps (a server namespace's share).
    package func createVolume(_ name: String, limit: Int? = nil) throws(MSBError) -> VolumeRecord {
        try Self.validateVolumeName(name)
        return try db.transaction { () throws(MSBError) -> VolumeRecord in
            if try volume(name) != nil {
                throw MSBError(.alreadyExists, "volume already exists: \(name)", hint: "run 'msb volume ls' to see volumes")
            }
            return try makeVolume(name, limit: limit)
        }
    }

    /// Inserts a sandbox's row, creating the named volumes its config mounts that do not
    /// exist yet (as `docker run -v NAME:/dir` does), in one transaction: a volume cannot be
    /// removed between the check and the row that starts using it.
    package func insert(_ record: SandboxRecord, creatingVolumesWithin limit: Int?) throws(MSBError) {
        try db.transaction { () throws(MSBError) in
            for mount in record.config.volumes ?? [] {
                guard case .named(let name) = mount.source else { continue }
                try Self.validateVolumeName(name)
                if try volume(name) == nil { _ = try makeVolume(name, limit: limit) }
            }
            try insert(record)
        }
    }

    /// Sandboxes whose config mounts named volume `name`.
    package func sandboxes(using name: String) throws(MSBError) -> [String] {
        try list().filter { $0.config.mounts(volume: name) }.map(\.config.name)
    }

    /// Removes volume `name` and its data, unless a sandbox's config mounts it.
    package func removeVolume(_ name: String) throws(MSBError) {
        try Self.validateVolumeName(name)
        let trash = try db.transaction { () throws(MSBError) -> String in
            guard try volume(name) != nil else { throw MSBError.volumeNotFound(name) }
            let users = try sandboxes(using: name)
            guard users.isEmpty else { throw MSBError.volumeInUse(name, by: users) }
            try db.query("DELETE FROM volumes WHERE name = ?", [.text(name)])
            // Moved aside before the commit: a create of the same name right after ours
            // finds the name free. Killed before the commit, the row stays without its
            // directory, which is no volume.
            let trash = paths.volumesDirectory + "/" + Self.trashPrefix + UUID().uuidString
            guard rename(volumeDirectory(name), trash) == 0 else {
                throw MSBError(.stateStore, "cannot remove volume \(name)", cause: SendableErrorDescription(String(cString: strerror(errno))))
            }
            return trash
        }
        try? FileManager.default.removeItem(atPath: trash)
    }

    /// Under the write lock: clears what a killed create or remove of `name` left, then
    /// makes the directories aside and renames them into place before the row is added.
    private func makeVolume(_ name: String, limit: Int?) throws(MSBError) -> VolumeRecord {
        if let limit, try volumes().count >= limit {
            throw MSBError(.limitExceeded, "volume limit reached: at most \(limit) volumes may be kept", hint: "remove a volume first ('msb volume rm')")
        }
        try paths.prepare(including: [paths.volumesDirectory])
        removeLeftovers()
        try db.query("DELETE FROM volumes WHERE name = ?", [.text(name)])
        let target = volumeDirectory(name)
        if FileManager.default.fileExists(atPath: target) { try? FileManager.default.removeItem(atPath: target) }
        let pending = paths.volumesDirectory + "/" + Self.pendingPrefix + UUID().uuidString
        func failure(_ what: String) -> MSBError {
            MSBError(.stateStore, "cannot create volume \(name): \(what)", cause: SendableErrorDescription(String(cString: strerror(errno))))
        }
        guard mkdir(pending, 0o700) == 0 else { throw failure("mkdir") }
        // The guest's root owns the data it writes (uid mapping is the identity): the
        // directory itself is root's and readable by all, like a fresh filesystem's root.
        guard chmod(pending, 0o700) == 0, mkdir(pending + "/data", 0o755) == 0, chmod(pending + "/data", 0o755) == 0 else {
            let error = failure("mkdir")
            try? FileManager.default.removeItem(atPath: pending)
            throw error
        }
        guard rename(pending, target) == 0 else {
            let error = failure("rename")
            try? FileManager.default.removeItem(atPath: pending)
            throw error
        }
        let record = VolumeRecord(name: name, createdAt: Date())
        try db.query("INSERT INTO volumes (name, created_at) VALUES (?, ?)", [.text(name), .real(record.createdAt.timeIntervalSince1970)])
        return record
    }

    /// Half-made and half-removed directories of killed creates and removes. Called under
    /// the write lock, so no create is making one right now.
    private func removeLeftovers() {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: paths.volumesDirectory)) ?? []
        for entry in entries where entry.hasPrefix(Self.pendingPrefix) || entry.hasPrefix(Self.trashPrefix) {
            try? FileManager.default.removeItem(atPath: paths.volumesDirectory + "/" + entry)
        }
    }

    private func volumeDirectory(_ name: String) -> String { paths.volumesDirectory + "/" + name }

    private func directoryExists(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    package static func validateVolumeName(_ name: String) throws(MSBError) {
        guard VolumeMount.isValidVolumeName(name) else {
            throw MSBError(.invalidArgument, "invalid volume name '\(PrintableText.escaped(name, maxScalars: 80))'",
                           hint: "names are 1-63 characters: letters, digits, '_', '.' and '-', starting with a letter or digit")
        }
    }
}

extension MSBError {
    package static func volumeNotFound(_ name: String) -> MSBError {
        MSBError(.notFound, "volume not found: \(name)", hint: "run 'msb volume ls' to see volumes")
    }

    /// `users`: the sandboxes whose config mounts the volume (at least one).
    package static func volumeInUse(_ name: String, by users: [String]) -> MSBError {
        let by = users.count == 1 ? "sandbox \(users[0])" : "sandboxes " + users.joined(separator: ", ")
        return MSBError(.invalidState, "volume in use: \(name) (by \(by))",
                        hint: "remove \(users.count == 1 ? "that sandbox" : "those sandboxes") first ('msb rm \(users.first ?? name)')")
    }
}
