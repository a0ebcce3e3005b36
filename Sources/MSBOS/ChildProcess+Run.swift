import CMSBSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a child printed and how it ended.
package struct CapturedRun: Sendable {
    package var status: WaitStatus
    package var standardOutput: [UInt8]
    /// The last `stderrKeepBytes` of what it wrote to stderr.
    package var standardError: [UInt8]

    package var outputText: String { String(decoding: standardOutput, as: UTF8.self) }
    /// The last lines of stderr joined with "; ", for an error message.
    package func errorSummary(lines: Int = 5) -> String {
        String(decoding: standardError, as: UTF8.self).split(separator: "\n").suffix(lines).joined(separator: "; ")
    }
}

extension ChildProcess {
    /// Runs `spec` to completion with stdout and stderr captured through pipes read in one
    /// poll loop (neither pipe can fill up and stall the child). stdin is /dev/null unless
    /// the spec names one. Past `timeoutSeconds` the child's group gets SIGTERM, then
    /// SIGKILL two seconds later, and the run ends as killed.
    package static func run(_ spec: SpawnSpec, timeoutSeconds: Double? = nil, stdoutLimitBytes: Int = 16 << 20,
                            stderrKeepBytes: Int = 8192) throws(SpawnError) -> CapturedRun {
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard msb_pipe(&outPipe, 0) == 0 else { throw SpawnError(stage: .fork, errorNumber: errno, executable: spec.executable) }
        guard msb_pipe(&errPipe, 0) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw SpawnError(stage: .fork, errorNumber: errno, executable: spec.executable)
        }
        var spec = spec
        spec.standardOutput = outPipe[1]
        spec.standardError = errPipe[1]
        let child: ChildProcess
        do {
            child = try spawn(spec)
        } catch {
            for fd in outPipe + errPipe { close(fd) }
            throw error
        }
        close(outPipe[1]); close(errPipe[1])
        var output: [UInt8] = [], errors: [UInt8] = []
        var open = [outPipe[0], errPipe[0]]
        // Past the timeout: SIGTERM, SIGKILL 2 s later, and 5 s after that stop reading
        // pipes that descendants in other process groups may still hold.
        var nextStep = timeoutSeconds.map { MonotonicClock.now() + $0 }
        var stepsTaken = 0
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let wait = nextStep.map { MonotonicClock.milliseconds(until: $0) } ?? -1
            _ = Glibc.poll(&fds, nfds_t(fds.count), wait)
            for entry in fds where entry.revents != 0 {
                let chunk = (try? FileDescriptorIO.readSome(entry.fd)) ?? nil
                guard let chunk else {
                    close(entry.fd)
                    open.removeAll { $0 == entry.fd }
                    continue
                }
                if entry.fd == outPipe[0] {
                    output += chunk.prefix(max(0, stdoutLimitBytes - output.count))
                } else {
                    errors += chunk
                    if errors.count > stderrKeepBytes { errors.removeFirst(errors.count - stderrKeepBytes) }
                }
            }
            let now = MonotonicClock.now()
            guard let step = nextStep, now >= step else { continue }
            switch stepsTaken {
            case 0:
                child.signal(SIGTERM, group: spec.newSession)
                nextStep = now + 2
            case 1:
                child.signal(SIGKILL, group: spec.newSession)
                nextStep = now + 5
            default:
                for fd in open { close(fd) }
                open = []
            }
            stepsTaken += 1
        }
        return CapturedRun(status: child.wait(), standardOutput: output, standardError: errors)
    }
}

/// Seconds on the monotonic clock: deadlines never jump with the wall clock.
package enum MonotonicClock {
    package static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// A poll(2) timeout that wakes at `deadline` (0 once it passed; capped at a day).
    package static func milliseconds(until deadline: Double) -> Int32 {
        let remaining = (deadline - now()) * 1000
        guard remaining.isFinite else { return remaining > 0 ? 86_400_000 : 0 }
        return Int32(max(0, min(remaining + 1, 86_400_000)))
    }
}

/// Seconds as people write them in messages: `30` for whole numbers, `0.5` otherwise.
package func secondsText(_ value: Double) -> String {
    value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
