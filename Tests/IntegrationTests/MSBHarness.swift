import Foundation
import Testing

/// Runs the real `msb` binary the way a user would, against one state directory per
/// test run and the guest artifacts that scripts/test.sh built (MSB_ARTIFACTS).
struct MSBResult {
    let status: Int32
    let stdout: Data
    let stderr: String
    var out: String { String(decoding: stdout, as: UTF8.self) }
}

enum MSBHarness {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static let binary: String = {
        if let explicit = ProcessInfo.processInfo.environment["MSB_BIN"], !explicit.isEmpty { return explicit }
        return repoRoot + "/.build/debug/msb"
    }()

    /// One MSB_HOME for the whole run (short, so socket paths stay under 108 bytes);
    /// scripts/test.sh removes every sandbox in it afterwards and checks no QEMU is left.
    static let home: String = {
        if let explicit = ProcessInfo.processInfo.environment["MSB_TEST_HOME"], !explicit.isEmpty { return explicit }
        let dir = "/tmp/msb-test-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static var artifacts: String? {
        ProcessInfo.processInfo.environment["MSB_ARTIFACTS"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "MSB_HOME": home, "MSB_ACCEL": "auto"]
        if let artifacts { env["MSB_ARTIFACTS"] = artifacts }
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Runs msb to completion; stdin is written from a separate thread so nothing deadlocks.
    @discardableResult
    static func run(_ arguments: [String], stdin: Data? = nil, env: [String: String] = [:]) throws -> MSBResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment(env)
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        if let stdin {
            Thread.detachNewThread {
                try? inPipe.fileHandleForWriting.write(contentsOf: stdin)
                try? inPipe.fileHandleForWriting.close()
            }
        }
        let errBox = DataBox()
        let errThread = Thread { errBox.data = errPipe.fileHandleForReading.readDataToEndOfFile() ; errBox.done.signal() }
        errThread.start()
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        errBox.done.wait()
        process.waitUntilExit()
        return MSBResult(status: process.terminationStatus, stdout: out, stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    /// Runs msb and requires success.
    @discardableResult
    static func ok(_ arguments: [String], stdin: Data? = nil, env: [String: String] = [:],
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let result = try run(arguments, stdin: stdin, env: env)
        #expect(result.status == 0, "msb \(arguments.joined(separator: " ")) failed: \(result.stderr)", sourceLocation: sourceLocation)
        return result.out
    }

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max) % 100_000)"
    }

    /// The sandbox's entry in `ls --format json`.
    static func listed(_ name: String) throws -> [String: Any]? {
        let json = try run(["ls", "--format", "json"]).stdout
        let array = try JSONSerialization.jsonObject(with: json) as? [[String: Any]] ?? []
        return array.first { $0["name"] as? String == name }
    }

    /// PIDs of processes whose command line contains `needle`.
    static func processes(matching needle: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let cmdline = String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return cmdline.contains(needle)
        }
    }
}

final class DataBox: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}

/// One sandbox booted once and shared by the tests that only exec in it.
enum SharedSandbox {
    static let name: String = {
        let name = "shared-\(getpid())"
        _ = try? MSBHarness.run(["create", "--name", name])
        return name
    }()
}
