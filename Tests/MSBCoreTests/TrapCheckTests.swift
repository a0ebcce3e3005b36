import Foundation
import Testing

/// Nothing derived from input may trap the host: a trap in the server takes every tenant
/// down, in the supervisor it kills a sandbox. This check reads the whole source tree (code
/// only: comments and string literals are skipped) for the constructs that trap:
///
/// - everywhere: force unwraps (`x!`), `try!`, `as!`, `fatalError`, `precondition`,
///   `preconditionFailure`, `unsafelyUnwrapped`;
/// - in the files that parse what attackers send (`parserFiles`): integer conversions
///   without a label, since `Int32(x)` traps when x does not fit. The label says what
///   happens instead: `clamping:`, `truncatingIfNeeded:`, `exactly:` (optional),
///   `bitPattern:`, or a parse (`radix:`, `ascii:`).
///
/// Sites that cannot trap for a reason the scanner cannot see are allowed below, each
/// with its reason. Arithmetic overflow is not visible to a scanner: the parsers use
/// `&+`/`addingReportingOverflow` or bound their inputs first, and the fuzz targets
/// (scripts/fuzz.sh) exercise them.
@Suite struct TrapCheckTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// (file suffix, code on the line) → why it cannot trap.
    static let allowed: [(file: String, code: String, reason: String)] = [
        ("MSBOS/ChildProcess.swift", "body($0.baseAddress!)", "the array always holds its terminating nil, so it has storage"),
    ]

    /// Files whose input is an attacker's: the guest's frames, registry documents, archives,
    /// JSON-RPC requests, image references, CLI values.
    static let parserFiles = [
        "MSBProtocol/Frame.swift", "MSBProtocol/WireCodec.swift", "MSBProtocol/Message.swift",
        "MSBImages/Registry/ImageReference.swift", "MSBImages/Registry/RegistryClient.swift",
        "MSBImages/Registry/ImagePuller.swift", "MSBImages/Registry/LayerApplier.swift",
        "MSBArchive/ArchiveReader.swift", "MSBArchive/ArchiveEntry.swift", "MSBArchive/LayerExtractor.swift",
        "MSBArchive/CopyExtractor.swift", "MSBVMM/QCOW2.swift",
        "MSBServer/RPCParams.swift", "MSBServer/RPCDispatcher.swift", "MSBServer/APIKeys.swift",
        "MSBServer/APIKeyRegistry.swift", "MSBCore/Model/InputParsing.swift", "MSBCore/Model/ContentDigest.swift",
        "MSBClient/Remote/RemoteEndpoint.swift", "MSBSupervisor/Supervisor+REPL.swift",
        "MSBSupervisor/Supervisor+Clients.swift", "MSBSupervisor/BufferedPeer.swift",
        "MSBHTTP/HTTPTransport+Download.swift", "MSBCommands/ArgumentParser.swift",
    ]

    nonisolated(unsafe) static let trapping = try! Regex(#"try!|as!|\bfatalError\(|\bprecondition\(|\bpreconditionFailure\(|unsafelyUnwrapped|[\w\)\]]!(?!=)"#)
    nonisolated(unsafe) static let conversion = try! Regex(#"\b(U?Int(8|16|32|64)?)\("#)
    static let safeLabels = ["clamping:", "truncatingIfNeeded:", "exactly:", "bitPattern:", "ascii:", "radix:"]

    /// The unlabelled integer conversions on a line: for each `IntN(`, its argument list up to
    /// the matching parenthesis must carry one of `safeLabels`.
    static func unlabelledConversions(_ line: String) -> [String] {
        line.matches(of: conversion).compactMap { match in
            var depth = 1
            var end = match.range.upperBound
            while end < line.endIndex && depth > 0 {
                if line[end] == "(" { depth += 1 } else if line[end] == ")" { depth -= 1 }
                end = line.index(after: end)
            }
            let call = String(line[match.range.lowerBound..<end])
            let argument = line[match.range.upperBound..<end].dropLast()
            // A number, or a C constant (POLLIN, SOCK_STREAM.rawValue): both are known to fit.
            let isLiteral = !argument.isEmpty && argument.allSatisfy { $0.isNumber || $0 == "_" }
                || (argument.first?.isUppercase == true
                    && argument.replacingOccurrences(of: ".rawValue", with: "").allSatisfy { $0.isUppercase || $0.isNumber || $0 == "_" })
            return isLiteral || safeLabels.contains(where: call.contains) ? nil : call
        }
    }

    @Test func noConstructThatTrapsOnInput() throws {
        var findings: [String] = []
        let sources = Self.root + "/Sources"
        let enumerator = FileManager.default.enumerator(atPath: sources)
        var scanned = 0
        while let relative = enumerator?.nextObject() as? String {
            guard relative.hasSuffix(".swift") else { continue }
            let text = try String(contentsOfFile: sources + "/" + relative, encoding: .utf8)
            scanned += 1
            let isParser = Self.parserFiles.contains(relative)
            for (number, line) in Self.codeLines(text).enumerated() {
                var hits = line.matches(of: Self.trapping).map { String(line[$0.range]) }
                if isParser { hits += Self.unlabelledConversions(line) }
                guard !hits.isEmpty else { continue }
                let code = line.trimmingCharacters(in: .whitespaces)
                if Self.allowed.contains(where: { relative.hasSuffix($0.file) && code.contains($0.code) }) { continue }
                findings.append("Sources/\(relative):\(number + 1): \(hits.joined(separator: ", ")): \(code)")
            }
        }
        #expect(scanned > 50, "the scan found only \(scanned) files")
        for file in Self.parserFiles {
            #expect(FileManager.default.fileExists(atPath: sources + "/" + file), "parser file \(file) moved: update the list")
        }
        #expect(findings.isEmpty, Comment(rawValue: "constructs that can trap:\n" + findings.joined(separator: "\n")))
    }

    @Test func theScannerSeesCodeNotText() {
        let lines = Self.codeLines(#"""
            let a = b! // c!
            let s = "d!" + "\(e!)"
            /* f!
               g! */ let h = """
               i!
               """
            """#)
        #expect(lines.map { $0.matches(of: Self.trapping).count } == [1, 1, 0, 0, 0, 0])
        #expect("x != y".matches(of: Self.trapping).isEmpty)
        #expect(Self.unlabelledConversions("Int32(clamping: x) + Int(text.dropFirst(), radix: 10)").isEmpty)
        #expect(Self.unlabelledConversions("UInt32(value) + Int(exactly: y)") == ["UInt32(value)"])
    }

    /// The source with comments and string literals blanked (interpolations stay code),
    /// split into lines at the original line breaks.
    static func codeLines(_ text: String) -> [String] {
        var output = ""
        let chars = Array(text)
        var index = 0
        // A stack of open string literals: (is multi-line, interpolation paren depth or nil).
        var strings: [(multiline: Bool, interpolationDepth: Int?)] = []
        var blockComments = 0
        func at(_ offset: Int) -> Character? { index + offset < chars.count ? chars[index + offset] : nil }
        while index < chars.count {
            let c = chars[index]
            if blockComments > 0 {
                if c == "*" && at(1) == "/" { blockComments -= 1; index += 2; continue }
                if c == "/" && at(1) == "*" { blockComments += 1; index += 2; continue }
                output.append(c == "\n" ? "\n" : " ")
                index += 1
                continue
            }
            if let top = strings.last, top.interpolationDepth == nil {
                // Inside a literal: skip text, find its end or an interpolation.
                if c == "\\" && at(1) == "(" {
                    strings[strings.count - 1].interpolationDepth = 0
                    output += "  "
                    index += 2
                    continue
                }
                if c == "\\" { output += "  "; index += 2; continue }
                if top.multiline && c == "\"" && at(1) == "\"" && at(2) == "\"" { strings.removeLast(); output += "   "; index += 3; continue }
                if !top.multiline && c == "\"" { strings.removeLast(); output.append(" "); index += 1; continue }
                output.append(c == "\n" ? "\n" : " ")
                index += 1
                continue
            }
            // Code (top level or inside an interpolation).
            if c == "/" && at(1) == "/" {
                while index < chars.count && chars[index] != "\n" { index += 1 }
                continue
            }
            if c == "/" && at(1) == "*" { blockComments += 1; index += 2; continue }
            if c == "\"" {
                let multiline = at(1) == "\"" && at(2) == "\""
                strings.append((multiline, nil))
                output += multiline ? "   " : " "
                index += multiline ? 3 : 1
                continue
            }
            if let depth = strings.last?.interpolationDepth {
                if c == "(" { strings[strings.count - 1].interpolationDepth = depth + 1 }
                if c == ")" {
                    if depth == 0 { strings[strings.count - 1].interpolationDepth = nil; output.append(" "); index += 1; continue }
                    strings[strings.count - 1].interpolationDepth = depth - 1
                }
            }
            output.append(c)
            index += 1
        }
        return output.components(separatedBy: "\n")
    }
}
