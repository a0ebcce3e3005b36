import Foundation
import MSBCore
import MSBOS

extension ImageStore {
    /// How long a fetch waits for another process fetching the same name: a build of
    /// python or node takes minutes, a large pull longer.
    package static let fetchLockTimeoutSeconds = 1800.0

    /// Runs `body` holding `$MSB_IMAGES/.lock-NAME` (an flock: a fetcher killed with -9
    /// releases it), so concurrent first uses of one image fetch it once; the others wait
    /// at most `timeoutSeconds` and then find it stored.
    package func withFetchLock<T>(_ name: String, timeoutSeconds: Double = fetchLockTimeoutSeconds,
                                  _ body: () throws(MSBError) -> T) throws(MSBError) -> T {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoded = name.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
        let fd = open(directory + "/.lock-" + encoded, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw MSBError(.stateStore, "cannot open the lock of image \(name): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let deadline = MonotonicClock.now() + timeoutSeconds
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw MSBError(.stateStore, "cannot lock image \(name): \(String(cString: strerror(errno)))")
            }
            guard MonotonicClock.now() < deadline else {
                throw MSBError(.timeout, "another msb has been fetching image \(name) for over \(Int(timeoutSeconds))s",
                               hint: "try again later")
            }
            usleep(100_000)
        }
        return try body()
    }
}
