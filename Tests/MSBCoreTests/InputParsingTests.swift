import Testing
@testable import MSBCore
import MSBClient
import MSBProtocol

@Suite struct InputParsingTests {
    @Test(arguments: ["web", "a", "A1", "my_box.v2-x", String(repeating: "a", count: 63)])
    func validNames(_ name: String) throws {
        try InputParsing.validateName(name)
    }

    @Test(arguments: ["", "-web", ".web", "_x", "has space", "slash/x", "ü", String(repeating: "a", count: 64), "../x"])
    func invalidNames(_ name: String) {
        #expect(throws: MSBError.self) { try InputParsing.validateName(name) }
    }

    @Test func memorySizes() throws {
        #expect(try InputParsing.parseMemoryMiB("512M") == 512)
        #expect(try InputParsing.parseMemoryMiB("512m") == 512)
        #expect(try InputParsing.parseMemoryMiB("1G") == 1024)
        #expect(try InputParsing.parseMemoryMiB("2GiB") == 2048)
        #expect(try InputParsing.parseMemoryMiB("768") == 768)
        #expect(try InputParsing.parseMemoryMiB("131072K") == 128)
        for bad in ["12XB", "", "G", "-1G", "1.5G", "32M", "99999999999G", "1 G"] {
            #expect(throws: MSBError.self, "\(bad)") { try InputParsing.parseMemoryMiB(bad) }
        }
        let error = #expect(throws: MSBError.self) { try InputParsing.parseMemoryMiB("12XB") }
        #expect(error?.message == "invalid memory size '12XB'")
        #expect(error?.code == .invalidArgument)
    }

    @Test func durations() throws {
        #expect(try InputParsing.parseDurationMilliseconds("500ms") == 500)
        #expect(try InputParsing.parseDurationMilliseconds("30s") == 30_000)
        #expect(try InputParsing.parseDurationMilliseconds("5m") == 300_000)
        #expect(try InputParsing.parseDurationMilliseconds("1h") == 3_600_000)
        #expect(try InputParsing.parseDurationMilliseconds("1h30m") == 5_400_000)
        #expect(try InputParsing.parseDurationMilliseconds("2") == 2_000)
        #expect(try InputParsing.parseDurationMilliseconds("1.5s") == 1_500)
        for bad in ["-1", "0", "0s", "", "5x", "s", "1h-5m", "+3", "0.0008", "0.5ms"] {
            #expect(throws: MSBError.self, "\(bad)") { try InputParsing.parseDurationMilliseconds(bad) }
        }
    }

    @Test func cpus() throws {
        #expect(try InputParsing.parseCPUs("2") == 2)
        for bad in ["0", "-1", "x", "65", ""] {
            #expect(throws: MSBError.self) { try InputParsing.parseCPUs(bad) }
        }
    }

    @Test func environment() throws {
        try InputParsing.validateEnvironment("FOO=bar")
        try InputParsing.validateEnvironment("FOO=")
        try InputParsing.validateEnvironment("A_1=x=y")
        for bad in ["FOO", "=x", "A-B=1", "A B=1"] {
            #expect(throws: MSBError.self) { try InputParsing.validateEnvironment(bad) }
        }
    }

    @Test func memoryFormatting() {
        #expect(InputParsing.formatMemory(mib: 512) == "512M")
        #expect(InputParsing.formatMemory(mib: 2048) == "2G")
        #expect(InputParsing.formatMemory(mib: 1536) == "1536M")
    }

    @Test func exitCodesFollowDockerExec() {
        #expect(ExecOutcome.exited(.init(code: 7)).exitCode == 7)
        #expect(ExecOutcome.exited(.init(code: 0, signal: 9)).exitCode == 137)
        #expect(ExecOutcome.exited(.init(code: 0, signal: 9, timedOut: true)).exitCode == 124)
        #expect(ExecOutcome.failed(.init(kind: .notFound, message: "")).exitCode == 127)
        #expect(ExecOutcome.failed(.init(kind: .notExecutable, message: "")).exitCode == 126)
        #expect(ExecOutcome.failed(.init(kind: .failed, message: "")).exitCode == 125)
    }
}

/// The one error table: what a code becomes at the CLI and on the wire.
@Suite struct ErrorCodeTableTests {
    @Test func usageErrorsExitWithTwoRetryLaterWith75AndEverythingElseWithOne() {
        #expect(MSBError.Code.invalidArgument.edges.exitCode == 2)
        // "Too many at once, retry later" (HTTP 429) has EX_TEMPFAIL, so scripts can tell it apart.
        #expect(MSBError.Code.rateLimited.edges.exitCode == 75 && MSBError.Code.rateLimited.edges.rpcHTTPStatus == 429)
        #expect(MSBError.Code.notReady.edges.exitCode == 75 && MSBError.Code.notReady.edges.rpcHTTPStatus == 200)
        for code in MSBError.Code.all where code != .invalidArgument && code != .rateLimited && code != .notReady {
            #expect(code.edges.exitCode == 1, "\(code)")
        }
    }

    @Test func rpcCodesAreDistinctPerKindAndInTheServerRange() {
        let specific = MSBError.Code.all.filter { $0.edges.rpcCode != -32000 }
        #expect(Set(specific.map(\.edges.rpcCode)).count == specific.count)
        for code in MSBError.Code.all {
            let rpc = code.edges.rpcCode
            #expect((-32099 ... -32000).contains(rpc) || rpc == -32602 || rpc == -32603, "\(code)")
        }
        #expect(MSBError.Code.accessDenied.edges.rpcHTTPStatus == 403)
        #expect(MSBError.Code.notFound.edges.httpStatus == 404)
    }
}

@Suite struct HostnameParsingTests {
    @Test(arguments: ["web", "a", "A1", "web-1", "web.example.com", "1x", String(repeating: "a", count: 63),
                      String(repeating: "a", count: 62) + ".b"])
    func validHostnames(_ hostname: String) throws {
        try InputParsing.validateHostname(hostname)
    }

    @Test(arguments: ["", "-web", "web-", "a_b", "a..b", ".a", "a.", "has space", "ü", "a/b", "a\nb",
                      String(repeating: "a", count: 64), String(repeating: "a", count: 32) + "." + String(repeating: "b", count: 32)])
    func invalidHostnames(_ hostname: String) {
        let error = #expect(throws: MSBError.self) { try InputParsing.validateHostname(hostname) }
        #expect(error?.code == .invalidArgument)
    }

    @Test func theMessageEscapesControlCharacters() {
        let error = #expect(throws: MSBError.self) { try InputParsing.validateHostname("a\u{1b}[2J") }
        #expect(error?.message == "invalid hostname 'a\\x1b[2J'")
    }
}
