import CSQLite
import Foundation

/// A thin wrapper over the system libsqlite3: prepared statements, bound values,
/// transactions. Errors carry SQLite's own message.
final class SQLiteDatabase {
    private var handle: OpaquePointer?
    let path: String

    enum Value {
        case null, int(Int64), real(Double), text(String)
    }

    init(path: String) throws(MSBError) {
        self.path = path
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &handle, flags, nil) == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            throw MSBError(.stateStore, "cannot open state database \(path): \(message)")
        }
        chmod(path, 0o600)
        // Several msb processes use the database at once: wait for locks instead of failing.
        sqlite3_busy_timeout(handle, 10_000)
    }

    deinit { sqlite3_close(handle) }

    private func error(_ what: String) -> MSBError {
        MSBError(.stateStore, "state database error (\(what)): \(String(cString: sqlite3_errmsg(handle)))")
    }

    /// Runs SQL without results. SQLite answers BUSY without calling the busy handler in
    /// some cases (switching a new database to WAL while another process opens it), so a
    /// busy or locked answer is retried here for up to the same 10 s.
    func execute(_ sql: String) throws(MSBError) {
        let deadline = Date().addingTimeInterval(10)
        while true {
            var message: UnsafeMutablePointer<CChar>?
            let result = sqlite3_exec(handle, sql, nil, nil, &message)
            if result == SQLITE_OK { return }
            let text = message.map { String(cString: $0) } ?? "unknown"
            sqlite3_free(message)
            let primary = result & 0xff
            guard primary == SQLITE_BUSY || primary == SQLITE_LOCKED, Date() < deadline else {
                throw MSBError(.stateStore, "state database error: \(text)")
            }
            usleep(10_000)
        }
    }

    /// Runs a statement and returns its rows as arrays of values.
    @discardableResult
    func query(_ sql: String, _ parameters: [Value] = []) throws(MSBError) -> [[Value]] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { throw error("prepare") }
        defer { sqlite3_finalize(statement) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (index, value) in parameters.enumerated() {
            let position = Int32(index + 1)
            switch value {
            case .null: sqlite3_bind_null(statement, position)
            case .int(let v): sqlite3_bind_int64(statement, position, v)
            case .real(let v): sqlite3_bind_double(statement, position, v)
            case .text(let v): sqlite3_bind_text(statement, position, v, -1, transient)
            }
        }
        var rows: [[Value]] = []
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            if step == SQLITE_CONSTRAINT { throw MSBError(.alreadyExists, "constraint violated") }
            guard step == SQLITE_ROW else { throw error("step") }
            var row: [Value] = []
            for column in 0..<sqlite3_column_count(statement) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: row.append(.real(sqlite3_column_double(statement, column)))
                case SQLITE_NULL: row.append(.null)
                default: row.append(.text(String(cString: sqlite3_column_text(statement, column))))
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// BEGIN IMMEDIATE takes the write lock up front, so read-modify-write cycles
    /// from concurrent msb processes serialise instead of failing with SQLITE_BUSY.
    func transaction<T>(_ body: () throws(MSBError) -> T) throws(MSBError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

extension SQLiteDatabase.Value {
    var int: Int64? { if case .int(let v) = self { return v }; return nil }
    var real: Double? {
        switch self {
        case .real(let v): return v
        case .int(let v): return Double(v)
        default: return nil
        }
    }
    var text: String? { if case .text(let v) = self { return v }; return nil }
}
