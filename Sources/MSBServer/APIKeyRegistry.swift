import Foundation
import MSBClient
import MSBCore

/// One issued API key as the server records it (never the key itself, only its id).
package struct APIKeyRecord: Codable, Sendable, Equatable {
    /// The key's `jti` claim.
    package var id: String
    package var namespace: String
    package var created_at: String
    /// nil: the key never expires (`--expire never`).
    package var expires_at: String?
    package var revoked_at: String?

    package init(id: String, namespace: String, created_at: String, expires_at: String? = nil, revoked_at: String? = nil) {
        self.id = id
        self.namespace = namespace
        self.created_at = created_at
        self.expires_at = expires_at
        self.revoked_at = revoked_at
    }
}

/// The keys a server has issued, in `$MSB_HOME/server/keys.json` (0600). `keygen` and
/// `keys revoke` are other processes than the server, so every change is made under a lock
/// file and written atomically (a new file renamed over the old); the server re-reads the
/// list when the file changed, on every request. A key whose id is not on the list is
/// refused, so removing the file revokes every key.
package final class APIKeyRegistry: @unchecked Sendable {
    package let path: String
    private let lock = NSLock()
    /// The list as last read, and the file's identity then (inode, mtime, size).
    private var cache: (stamp: [Int], records: [String: APIKeyRecord])?

    package init(serverDirectory: String) { path = serverDirectory + "/keys.json" }

    /// Every recorded key, oldest first.
    package func records() throws(MSBError) -> [APIKeyRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        do {
            return try JSONDecoder().decode([APIKeyRecord].self, from: data)
        } catch {
            throw MSBError(.stateStore, "the key list \(path) is damaged", hint: "remove it (this revokes every key) and issue new keys")
        }
    }

    package func add(_ record: APIKeyRecord) throws(MSBError) {
        try change { $0.append(record) }
    }

    /// Marks the key revoked (from now on every request with it is refused) and returns it.
    @discardableResult
    package func revoke(_ id: String, now: Date = Date()) throws(MSBError) -> APIKeyRecord {
        var revoked: APIKeyRecord?
        try change { records in
            guard let index = records.firstIndex(where: { $0.id == id }) else { return }
            if records[index].revoked_at == nil { records[index].revoked_at = RemoteWire.iso8601(now) }
            revoked = records[index]
        }
        guard let revoked else {
            throw MSBError(.notFound, "API key not found: \(id)", hint: "run 'msb server keys ls' to see key ids")
        }
        return revoked
    }

    /// Refuses a key that is not on the list or was revoked. Runs on every request.
    package func check(_ claims: APIKeyClaims) throws(MSBError) {
        let renew = "issue a new one with 'msb server keygen'"
        guard let id = claims.id else { throw MSBError(.accessDenied, "API key without an id (made by an older msb)", hint: renew) }
        let records: [String: APIKeyRecord]
        do throws(MSBError) {
            records = try current()
        } catch {
            // The client learns nothing about the server's files.
            throw MSBError(.accessDenied, "the server cannot read its list of API keys", hint: "tell the server's operator")
        }
        guard let record = records[id] else { throw MSBError(.accessDenied, "API key \(id) is not known to this server", hint: renew) }
        if let revoked = record.revoked_at { throw MSBError(.accessDenied, "API key \(id) was revoked at \(revoked)", hint: renew) }
    }

    private func current() throws(MSBError) -> [String: APIKeyRecord] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [:] }
        let stamp = [Int(truncatingIfNeeded: info.st_ino), info.st_mtim.tv_sec, info.st_mtim.tv_nsec, Int(truncatingIfNeeded: info.st_size)]
        lock.lock()
        defer { lock.unlock() }
        if let cache, cache.stamp == stamp { return cache.records }
        var records: [String: APIKeyRecord] = [:]
        for record in try self.records() { records[record.id] = record }
        cache = (stamp, records)
        return records
    }

    /// Read, change and write the list while holding `keys.json.lock`.
    private func change(_ body: (inout [APIKeyRecord]) -> Void) throws(MSBError) {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw MSBError(.stateStore, "cannot create \(directory)", cause: SendableErrorDescription("\(error)"))
        }
        let lockFd = open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lockFd >= 0 else { throw MSBError(.stateStore, "cannot open \(path).lock: \(String(cString: strerror(errno)))") }
        defer { close(lockFd) }
        while flock(lockFd, LOCK_EX) != 0 && errno == EINTR {}
        var records = try records()
        body(&records)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let temporary = path + ".tmp-\(getpid())"
        guard let data = try? encoder.encode(records),
              FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]),
              rename(temporary, path) == 0 else {
            unlink(temporary)
            throw MSBError(.stateStore, "cannot write the key list \(path)")
        }
    }
}
