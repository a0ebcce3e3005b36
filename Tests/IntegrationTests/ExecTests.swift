import Foundation
import Testing

/// Exec behaviour on one shared, already-booted sandbox.
@Suite(.serialized) struct ExecTests {
    let name = SharedSandbox.name

    @Test func artifactsAreConfigured() {
        #expect(MSBHarness.artifacts != nil, "MSB_ARTIFACTS must point at the guest built by scripts/test.sh")
    }

    @Test func runsCommandsAndPassesExitCodesThrough() throws {
        let uname = try MSBHarness.run(["exec", name, "--", "uname", "-a"])
        #expect(uname.status == 0)
        #expect(uname.out.hasPrefix("Linux \(name) "))
        #expect(try MSBHarness.run(["exec", name, "--", "sh", "-c", "exit 7"]).status == 7)
        let split = try MSBHarness.run(["exec", name, "--", "sh", "-c", "echo out; echo err >&2"])
        #expect(split.out == "out\n")
        #expect(split.stderr == "err\n")
        // Killed by a signal: 128 + N.
        #expect(try MSBHarness.run(["exec", name, "--", "sh", "-c", "kill -9 $$"]).status == 137)
    }

    @Test func environmentAndWorkingDirectory() throws {
        let result = try MSBHarness.run(["exec", "-e", "FOO=bar", "-w", "/tmp", name, "--", "sh", "-c", "echo $FOO; pwd"])
        #expect(result.status == 0)
        #expect(result.out == "bar\n/tmp\n")
    }

    @Test func startFailuresUseDockerExitCodes() throws {
        let missing = try MSBHarness.run(["exec", name, "--", "no-such-command"])
        #expect(missing.status == 127)
        #expect(missing.stderr == "error: no-such-command: executable file not found in $PATH\n")
        let notExecutable = try MSBHarness.run(["exec", name, "--", "/etc/passwd"])
        #expect(notExecutable.status == 126)
        let badDir = try MSBHarness.run(["exec", "-w", "/nonexistent", name, "--", "true"])
        #expect(badDir.status == 125)
        #expect(badDir.stderr.contains("cannot change to directory /nonexistent"))
    }

    @Test func timeoutKillsTheGuestProcess() throws {
        let started = Date()
        let result = try MSBHarness.run(["exec", name, "--timeout", "2s", "--", "sleep", "30"])
        #expect(result.status == 124)
        #expect(Date().timeIntervalSince(started) < 20)
        let left = try MSBHarness.run(["exec", name, "--", "sh", "-c", "ps | grep -c '[s]leep 30' || true"])
        #expect(left.out == "0\n")
    }

    @Test func stdinOf10MBStreamsThroughCatExactly() throws {
        var generator = SystemRandomNumberGenerator()
        let input = Data((0..<(10 * 1024 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let result = try MSBHarness.run(["exec", name, "--", "cat"], stdin: input)
        #expect(result.status == 0)
        #expect(result.stdout.count == input.count)
        #expect(result.stdout == input)
    }

    @Test func binaryOutputIsByteExact() throws {
        // Every byte value, produced in the guest.
        let script = "i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf %o $i)\"; i=$((i+1)); done"
        let result = try MSBHarness.run(["exec", name, "--", "sh", "-c", script])
        #expect(result.status == 0)
        #expect(result.stdout == Data((0...255).map { UInt8($0) }))
    }

    @Test func stdinIsStreamedNotBufferedToEOF() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MSBHarness.binary)
        process.arguments = ["exec", name, "--", "cat"]
        process.environment = MSBHarness.environment()
        let inPipe = Pipe(), outPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        try process.run()
        // If stdin were buffered until EOF the read below would never return: end it then.
        let watchdog = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
        defer { watchdog.cancel() }
        try inPipe.fileHandleForWriting.write(contentsOf: Data("ping\n".utf8))
        // The echo must come back while stdin is still open.
        let echoed = outPipe.fileHandleForReading.availableData
        #expect(String(decoding: echoed, as: UTF8.self) == "ping\n")
        try inPipe.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test func fiveConcurrentExecsOnOneSandbox() throws {
        let results = ResultsBox()
        DispatchQueue.concurrentPerform(iterations: 5) { i in
            let result = try? MSBHarness.run(["exec", name, "--", "sh", "-c", "sleep 1; echo \(i)"])
            results.set(i, result)
        }
        for i in 0..<5 {
            let result = results.get(i)
            #expect(result?.status == 0)
            #expect(result?.out == "\(i)\n")
        }
    }

    @Test func largeOutputArrivesWhole() throws {
        let result = try MSBHarness.run(["exec", name, "--", "sh", "-c", "head -c 20000000 /dev/zero"])
        #expect(result.status == 0)
        #expect(result.stdout.count == 20_000_000)
    }
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Int: MSBResult] = [:]
    func set(_ i: Int, _ r: MSBResult?) { lock.lock(); results[i] = r; lock.unlock() }
    func get(_ i: Int) -> MSBResult? { lock.lock(); defer { lock.unlock() }; return results[i] }
}
