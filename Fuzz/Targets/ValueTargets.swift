import Foundation
import MSBCommands
import MSBCore
import MSBImages

extension FuzzTargets {
    /// `[registry/]repository[:tag|@digest]` from `msb pull` and `image.pull` (remote keys).
    /// A parsed reference must print as something that parses to itself.
    static func fuzzImageReference(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        // Manifest digests become file names: one accepted spelling, byte for byte.
        if let digest = ContentDigest(text), Array(digest.description.utf8) != bytes {
            violated("digest '\(text)' accepted as \(digest)")
        }
        guard let reference = try? ImageReference.parse(text) else { return }
        guard let again = try? ImageReference.parse(reference.description) else {
            violated("'\(reference)' (from '\(text)') does not parse")
        }
        guard again == reference else { violated("'\(text)' parsed as \(reference), its text as \(again)") }
        // The registry client joins the parts into URLs: each must stay in its place (no
        // '#', '?', '@' or '/' moving the host, query or path).
        let path = "/v2/\(reference.repository)/manifests/\(reference.reference)"
        guard let url = URLComponents(string: "https://\(reference.apiHost)\(path)"),
              url.path == path, url.query == nil, url.fragment == nil, url.user == nil, url.port.map({ $0 > 0 }) ?? true,
              let host = url.host, !host.isEmpty else {
            violated("'\(text)' parsed as \(reference), which is no registry URL")
        }
    }

    /// The value parsers of the CLI and of `sandbox.create`'s config: sizes, durations, cpu
    /// counts, names, environment items, accelerators, detach keys. The first byte picks the
    /// parser, so one corpus serves all of them.
    static func fuzzInputValues(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
        switch selector % 9 {
        case 0:
            if let mib = try? InputParsing.parseMemoryMiB(text), mib < 64 || mib > 1024 * 1024 {
                violated("memory '\(text)' parsed as \(mib) MiB, outside 64 MiB...1 TiB")
            }
        case 1:
            if let ms = try? InputParsing.parseDurationMilliseconds(text), ms == 0 {
                violated("duration '\(text)' parsed as 0 ms")
            }
        case 2:
            if let cpus = try? InputParsing.parseCPUs(text), !(1...64).contains(cpus) {
                violated("cpu count '\(text)' parsed as \(cpus)")
            }
        case 3: _ = try? InputParsing.validateName(text)
        case 4: _ = try? InputParsing.validateNamespace(text)
        case 5: _ = try? InputParsing.validateEnvironment(text)
        case 6: _ = try? AcceleratorChoice.parse(text)
        case 7:
            if let keys = try? TerminalExec.parseDetachKeys(text), keys.isEmpty {
                violated("detach keys '\(text)' parsed as nothing")
            }
        default:
            _ = InputParsing.formatMemory(mib: (try? InputParsing.parseMemoryMiB(text)) ?? 64)
        }
    }
}

extension FuzzTargets {
    /// The command line parser with every subcommand's spec: the first byte picks the
    /// subcommand, the rest are its words separated by NUL bytes.
    /// Built once: `CommandTable.specs` makes every spec anew on each call.
    private static let commandSpecs = CommandTable.specs

    static func fuzzArguments(_ bytes: [UInt8]) {
        guard let selector = bytes.first, !commandSpecs.isEmpty else { return }
        let spec = commandSpecs[Int(selector) % commandSpecs.count]
        _ = try? ArgumentParser.parse(fields(Array(bytes.dropFirst())), spec: spec)
    }
}
