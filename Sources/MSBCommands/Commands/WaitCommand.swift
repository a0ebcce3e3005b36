import Foundation
import MSBClient
import MSBCore
import MSBOS

/// `msb wait NAME...`: blocks until each sandbox is not running; the exit code says how it
/// ended (README "Exit codes", man page). Works the same on a server: each backend call is
/// bounded, and this loop asks again until the sandbox has stopped or `--timeout` passed.
struct WaitCommand: Subcommand {
    static let spec = CommandSpec(
        name: "wait", summary: "Wait until sandboxes have stopped; the exit code says how they ended",
        usage: "[OPTIONS] NAME [NAME...]",
        options: [OptionSpec(long: "timeout", short: nil, valueName: "DURATION", help: "Give up after this long (exit 124), e.g. 30s",
                             details: "give up after this long and exit 124, e.g. `30s` (default: wait as long as it takes)")],
        minPositionals: 1, maxPositionals: nil, positionalCompletion: .sandboxName,
        examples: ["msb wait web", "msb wait --timeout 5m web db"])

    /// One backend call waits at most this long (a server cuts it shorter), so that nothing
    /// waits without a deadline; the loop asks again.
    static let callSeconds = 60.0

    static func run(_ arguments: ParsedArguments, _ context: CommandContext) throws(MSBError) -> Int32 {
        var timeoutSeconds: Double?
        if let text = arguments.value("timeout") { timeoutSeconds = Double(try InputParsing.parseDurationMilliseconds(text)) / 1000 }
        for name in arguments.positionals { try InputParsing.validateName(name) }
        let deadline = timeoutSeconds.map { MonotonicClock.now() + $0 }
        if arguments.positionals.count == 1 {
            return try waitForOne(arguments.positionals[0], deadline: deadline, timeoutSeconds: timeoutSeconds, context)
        }
        // Several: one after the other, all within the one --timeout; the highest code wins.
        var code = CLI.ExitCode.success
        for name in arguments.positionals {
            do {
                let outcome = try waitForOne(name, deadline: deadline, timeoutSeconds: timeoutSeconds, context)
                code = max(code, outcome)
            } catch {
                code = max(code, context.report(error))
            }
        }
        return code
    }

    static func waitForOne(_ name: String, deadline: Double?, timeoutSeconds: Double?, _ context: CommandContext) throws(MSBError) -> Int32 {
        var pauseSeconds = 0.1
        while true {
            let askedSeconds = deadline.map { max(0, min($0 - MonotonicClock.now(), callSeconds)) } ?? callSeconds
            let calledAt = MonotonicClock.now()
            let info = try context.backend.wait(name, timeoutSeconds: askedSeconds)
            switch info.status {
            case .created, .stopped:
                return CLI.ExitCode.success
            case .crashed:
                _ = context.report(MSBError(.invalidState, "sandbox \(name) crashed" + (info.statusReason.map { ": \($0)" } ?? ""),
                                            hint: "run 'msb start \(name)' to boot it again"))
                return CLI.ExitCode.sandboxCrashed
            case .starting, .running, .draining, .paused, .stopping:
                if let deadline, let timeoutSeconds, MonotonicClock.now() >= deadline {
                    _ = context.report(MSBError(.timeout, "timed out after \(secondsText(timeoutSeconds))s waiting for sandbox \(name) to stop",
                                                hint: "stop it with 'msb stop \(name)', or wait longer with --timeout"))
                    return CLI.ExitCode.timedOut
                }
                // A backend that answers well before the time asked (a server with a shorter
                // limit, a sandbox started again) is asked again after a pause that grows to
                // a second, never in a tight loop.
                if MonotonicClock.now() - calledAt < askedSeconds / 2 {
                    let leftSeconds = deadline.map { max(0, $0 - MonotonicClock.now()) } ?? pauseSeconds
                    usleep(UInt32(min(pauseSeconds, leftSeconds) * 1_000_000))
                    pauseSeconds = min(pauseSeconds * 2, 1)
                }
            }
        }
    }
}
