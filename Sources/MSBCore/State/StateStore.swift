import Foundation
import MSBOS

/// One row of the `sandboxes` table: the config plus the process bookkeeping that
/// lets any msb invocation tell whether the sandbox is really running.
package struct SandboxRecord: Equatable, Sendable {
    package var config: SandboxConfig
    package var status: SandboxStatus
    package var statusReason: String?
    package var createdAt: Date
    package var startedAt: Date?
    package var supervisor: ProcessIdentity?
    package var vmm: ProcessIdentity?
    package var activeAccelerator: String?
    /// How the running VM started: from a template, or a cold boot and why.
    package var boot: String?

    package init(config: SandboxConfig, status: SandboxStatus, statusReason: String? = nil, createdAt: Date, startedAt: Date? = nil,
                 supervisor: ProcessIdentity? = nil, vmm: ProcessIdentity? = nil, activeAccelerator: String? = nil, boot: String? = nil) {
        self.config = config
        self.status = status
        self.statusReason = statusReason
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.supervisor = supervisor
        self.vmm = vmm
        self.activeAccelerator = activeAccelerator
        self.boot = boot
    }

    package var info: SandboxInfo {
        SandboxInfo(
            config: config, status: status, statusReason: statusReason, createdAt: createdAt,
            startedAt: startedAt, activeAccelerator: activeAccelerator, boot: boot)
    }

    /// The truth, whatever the row says: a sandbox whose supervisor is gone is not running.
    package func reconciled() -> SandboxRecord {
        guard status.expectsSupervisor, !(supervisor?.isAlive ?? false) else { return self }
        var copy = self
        copy.status = .crashed
        let pid = supervisor.map { " (pid \($0.pid))" } ?? ""
        copy.statusReason = "supervisor process\(pid) exited unexpectedly"
        copy.supervisor = nil
        return copy
    }
}

/// SQLite-backed sandbox records under `$MSB_HOME/state.db` (WAL mode, so readers
/// never block the writer and a crash mid-write leaves the last committed state).
package final class StateStore {
    let db: SQLiteDatabase
    /// Where the volumes the `volumes` table records keep their data.
    let paths: MSBPaths
    private static let columns =
        "name, config, status, status_reason, created_at, started_at, supervisor_pid, supervisor_ticks, vmm_pid, vmm_ticks, accelerator, boot"

    package init(paths: MSBPaths) throws(MSBError) {
        try paths.prepare()
        self.paths = paths
        db = try SQLiteDatabase(path: paths.database)
        try db.execute("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=NORMAL")
        try db.execute("""
            CREATE TABLE IF NOT EXISTS sandboxes (
                name TEXT PRIMARY KEY,
                config TEXT NOT NULL,
                status TEXT NOT NULL,
                status_reason TEXT,
                created_at REAL NOT NULL,
                started_at REAL,
                supervisor_pid INTEGER,
                supervisor_ticks INTEGER,
                vmm_pid INTEGER,
                vmm_ticks INTEGER,
                accelerator TEXT,
                boot TEXT
            )
            """)
        try db.execute("CREATE TABLE IF NOT EXISTS volumes (name TEXT PRIMARY KEY, created_at REAL NOT NULL)")
        // Databases made before `boot` existed gain the column (once; later it exists).
        let columns = try db.query("PRAGMA table_info(sandboxes)").compactMap { $0.count > 1 ? $0[1].text : nil }
        if !columns.contains("boot") { try db.execute("ALTER TABLE sandboxes ADD COLUMN boot TEXT") }
    }

    package func insert(_ record: SandboxRecord) throws(MSBError) {
        do {
            try db.query("INSERT INTO sandboxes (\(Self.columns)) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", try values(record))
        } catch where error.code == .alreadyExists {
            throw MSBError(.alreadyExists, "sandbox already exists: \(record.config.name)",
                           hint: "choose another --name, or remove it with 'msb rm \(record.config.name)'")
        }
    }

    package func get(_ name: String) throws(MSBError) -> SandboxRecord? {
        try db.query("SELECT \(Self.columns) FROM sandboxes WHERE name = ?", [.text(name)]).first.map(record)
    }

    package func list() throws(MSBError) -> [SandboxRecord] {
        try db.query("SELECT \(Self.columns) FROM sandboxes ORDER BY created_at, name").map(record)
    }

    /// Read-modify-write under the database's write lock. Returns the new record.
    @discardableResult
    package func update(_ name: String, _ change: (inout SandboxRecord) throws(MSBError) -> Void) throws(MSBError) -> SandboxRecord {
        try db.transaction { () throws(MSBError) -> SandboxRecord in
            guard var record = try get(name) else { throw MSBError.sandboxNotFound(name) }
            try change(&record)
            var params = try values(record)
            params.append(params.removeFirst())  // name goes last, for WHERE
            try db.query("""
                UPDATE sandboxes SET config=?, status=?, status_reason=?, created_at=?, started_at=?,
                supervisor_pid=?, supervisor_ticks=?, vmm_pid=?, vmm_ticks=?, accelerator=?, boot=? WHERE name=?
                """, params)
            return record
        }
    }

    package func delete(_ name: String) throws(MSBError) {
        try db.query("DELETE FROM sandboxes WHERE name = ?", [.text(name)])
    }

    /// Deletes the record if `check` (run under the write lock, with the record as stored)
    /// does not throw: nothing can start or re-create the sandbox between the two.
    package func delete(_ name: String, ifAllowedBy check: (SandboxRecord) throws(MSBError) -> Void) throws(MSBError) {
        try db.transaction { () throws(MSBError) in
            guard let record = try get(name) else { throw MSBError.sandboxNotFound(name) }
            try check(record)
            try db.query("DELETE FROM sandboxes WHERE name = ?", [.text(name)])
        }
    }

    private func values(_ r: SandboxRecord) throws(MSBError) -> [SQLiteDatabase.Value] {
        let config: String
        do {
            config = String(decoding: try JSONEncoder().encode(r.config), as: UTF8.self)
        } catch {
            throw MSBError(.stateStore, "cannot encode sandbox config")
        }
        func optionalInt(_ v: Int64?) -> SQLiteDatabase.Value { v.map { .int($0) } ?? .null }
        return [
            .text(r.config.name), .text(config), .text(r.status.rawValue), r.statusReason.map { .text($0) } ?? .null,
            .real(r.createdAt.timeIntervalSince1970), r.startedAt.map { .real($0.timeIntervalSince1970) } ?? .null,
            optionalInt(r.supervisor.map { Int64($0.pid) }), optionalInt(r.supervisor.map { Int64($0.startTicks) }),
            optionalInt(r.vmm.map { Int64($0.pid) }), optionalInt(r.vmm.map { Int64($0.startTicks) }),
            r.activeAccelerator.map { .text($0) } ?? .null, r.boot.map { .text($0) } ?? .null,
        ]
    }

    private func record(_ row: [SQLiteDatabase.Value]) throws(MSBError) -> SandboxRecord {
        guard row.count == 12, row[0].text != nil, let configText = row[1].text,
              let config = try? JSONDecoder().decode(SandboxConfig.self, from: Data(configText.utf8)) else {
            throw MSBError(.stateStore, "corrupt sandbox record in the state database")
        }
        func identity(_ pid: SQLiteDatabase.Value, _ ticks: SQLiteDatabase.Value) -> ProcessIdentity? {
            guard let p = pid.int, let t = ticks.int else { return nil }
            return ProcessIdentity(pid: Int32(p), startTicks: UInt64(t))
        }
        return SandboxRecord(
            config: config,
            status: SandboxStatus(rawValue: row[2].text ?? "") ?? .crashed,
            statusReason: row[3].text,
            createdAt: Date(timeIntervalSince1970: row[4].real ?? 0),
            startedAt: row[5].real.map { Date(timeIntervalSince1970: $0) },
            supervisor: identity(row[6], row[7]),
            vmm: identity(row[8], row[9]),
            activeAccelerator: row[10].text,
            boot: row[11].text)
    }
}
