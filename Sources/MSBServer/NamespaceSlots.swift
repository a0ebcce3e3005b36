import Foundation
import MSBCore

/// What each namespace has running at once of one kind (calls, image pulls), refused beyond
/// a limit at once rather than queued: a refused call never holds one of the server's
/// workers, so one namespace's long calls cannot starve another's.
package final class NamespaceSlots: @unchecked Sendable {
    package let limit: Int
    /// "calls", "image pulls": for the refusal.
    private let what: String
    /// The `server start` option that sets the limit.
    private let option: String
    private let lock = NSLock()
    private var inUse: [String: Int] = [:]

    package init(limit: Int, what: String, option: String) {
        self.limit = limit
        self.what = what
        self.option = option
    }

    /// Runs `body` holding one of `namespace`'s slots, or refuses when all are taken.
    package func withSlot<T>(_ namespace: String, _ body: () throws(MSBError) -> T) throws(MSBError) -> T {
        let taken = lock.withLock { () -> Bool in
            guard inUse[namespace, default: 0] < limit else { return false }
            inUse[namespace, default: 0] += 1
            return true
        }
        guard taken else {
            throw MSBError(.rateLimited, "namespace \(namespace) already has \(limit) \(what) running, the most this server allows one namespace",
                           hint: "retry when one has finished (the server's operator sets \(option))")
        }
        defer {
            lock.withLock {
                inUse[namespace, default: 1] -= 1
                if inUse[namespace] == 0 { inUse[namespace] = nil }
            }
        }
        return try body()
    }

    package func count(_ namespace: String) -> Int { lock.withLock { inUse[namespace, default: 0] } }
}
