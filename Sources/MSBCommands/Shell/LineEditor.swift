import CEditLine
import CMSBSys
import Foundation
import MSBClient
import MSBCore

/// libedit's readline interface with a history file of msb's own (libedit's format is
/// its own), capped in size. libedit is global state: one LineEditor at a time, used
/// from one thread.
final class LineEditor {
    static let historyLimit = 1000
    private let historyPath: String
    private var history: [String] = []
    private var interruptPipe: [Int32] = [-1, -1]

    init(historyPath: String) {
        self.historyPath = historyPath
        msb_editline_no_signal_handlers()
        msb_editline_disable_completion()
        if let text = try? String(contentsOfFile: historyPath, encoding: .utf8) {
            history = text.split(separator: "\n").map(String.init).suffix(Self.historyLimit)
            for line in history { add_history(line) }
        }
        _ = msb_pipe(&interruptPipe, 1)
        _ = msb_sigint_install(interruptPipe[1])
    }

    enum Input { case line(String), interrupted, endOfInput }

    func read(prompt: String) -> Input {
        drainInterrupts()
        guard let raw = readline(prompt) else {
            return msb_sigint_take() != 0 ? .interrupted : .endOfInput
        }
        defer { free(raw) }
        let line = String(cString: raw)
        if !line.trimmingCharacters(in: .whitespaces).isEmpty && line != history.last {
            add_history(line)
            history.append(line)
        }
        return .line(line)
    }

    private func drainInterrupts() {
        _ = msb_sigint_take()
        var buffer = [UInt8](repeating: 0, count: 16)
        while Glibc.read(interruptPipe[0], &buffer, 16) > 0 {}
    }

    /// Readable once per Ctrl-C pressed outside readline (while code runs).
    var interruptFd: Int32 { interruptPipe[0] }

    /// True once per Ctrl-C pressed while a command runs.
    func takeInterrupt() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = Glibc.read(interruptPipe[0], &buffer, 16)
        _ = msb_sigint_take()
        return n > 0
    }

    /// Written atomically (temporary file + rename), owner-only.
    func saveHistory() {
        let kept = history.suffix(Self.historyLimit)
        let directory = (historyPath as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        let temporary = historyPath + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((kept.joined(separator: "\n") + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else { return }
        rename(temporary, historyPath)
    }
}
