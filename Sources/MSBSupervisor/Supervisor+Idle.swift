import MSBOS

/// `--idle-timeout`: the sandbox is stopped once no client has been served for that long.
///
/// A client is being served while an exec's output goes to it (`msb exec`, `msb run`,
/// `msb shell`, `sandbox.command.run`; a detached exec no longer counts) or while a REPL
/// evaluation of its runs or waits (`msb repl`, `sandbox.repl.run`). Nothing else counts:
/// `msb metrics`, `ls`, `inspect`, `pause` and `resume` neither start nor extend the time,
/// and a paused sandbox idles like a running one. The idle time is measured from the
/// start, or from the end of the last request, and only while none is in progress.
extension Supervisor {
    /// Whether a client is being served now (see above).
    var servesClients: Bool {
        routes.keys.contains { !statsRequestIds.contains($0) }
            || interpreters.interpreters.values.contains { $0.current != nil || !$0.queue.isEmpty }
    }

    /// When the sandbox is stopped for idleness if nothing happens first; nil while a client
    /// is served or without an idle timeout.
    var idleDeadline: Double? {
        guard let idleTimeoutSeconds, !servesClients, stop == nil else { return nil }
        return lastClientActivity + idleTimeoutSeconds
    }

    /// Called once per round of the loop. A request that ended in this round counts as
    /// activity now, so the idle time starts at its end.
    func checkIdle(now: Double) {
        guard let idleTimeoutSeconds else { return }
        let serving = servesClients
        if serving || servedClientsLastRound { lastClientActivity = now }
        servedClientsLastRound = serving
        if let deadline = idleDeadline, now >= deadline {
            beginStop(reason: "stopped: idle for \(secondsText(idleTimeoutSeconds))s", force: false)
        }
    }
}
