import Foundation
import MSBCore

/// Image fetches (a pull or a build on first use) that `sandbox.start` runs on the server:
/// one background job per image, however many requests want it, that a request waits for
/// at most a bounded time. A build outlasting that wait goes on; the request is answered
/// "not ready, retry", and a later start finds the image (or the job's failure).
package final class ImageFetches: @unchecked Sendable {
    private final class Job: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var failure: MSBError?
    }

    private let lock = NSLock()
    private var jobs: [String: Job] = [:]

    package init() {}

    /// Runs `fetch` for `key` in the background unless a job for it runs already, and
    /// waits for it up to `waitSeconds`; then throws `notReady` with `pending`'s message.
    package func run(_ key: String, waitSeconds: Double, pending: @autoclosure () -> MSBError,
                     _ fetch: @escaping @Sendable () throws(MSBError) -> Void) throws(MSBError) {
        let (job, started) = lock.withLock { () -> (Job, Bool) in
            if let job = jobs[key] { return (job, false) }
            let job = Job()
            jobs[key] = job
            return (job, true)
        }
        if started {
            Thread.detachNewThread { [self] in
                var failure: MSBError?
                do throws(MSBError) { try fetch() } catch { failure = error }
                // Later starts look again (the image is stored, or a failed fetch is retried).
                lock.withLock {
                    job.failure = failure
                    jobs[key] = nil
                }
                // Wakes every waiter: each one signals again for the next.
                job.done.signal()
            }
        }
        guard job.done.wait(timeout: .now() + waitSeconds) == .success else { throw pending() }
        job.done.signal()
        if let failure = lock.withLock({ job.failure }) { throw failure }
    }

    /// Images being fetched now.
    package var inProgress: [String] { lock.withLock { jobs.keys.sorted() } }
}
