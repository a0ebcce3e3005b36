import Testing
@testable import MSBSupervisor
import MSBCore

/// The REPL's end-of-evaluation markers must be found however the output is split.
@Suite struct InterpreterPoolTests {
    func pool() -> (InterpreterPool, InterpreterPool.Interpreter) {
        let pool = InterpreterPool()
        let interpreter = pool.submit(language: "python", code: "print(1)", client: 7, localId: 3) { _, _ in 42 }!
        _ = pool.nextInput(interpreter)
        return (pool, interpreter)
    }

    @Test func requestsAreLengthPrefixed() {
        let pool = InterpreterPool()
        let interpreter = pool.submit(language: "py", code: "x = 'é'", client: 1, localId: 1) { argv, env in
            #expect(argv.first == "python3")
            #expect(env.first?.hasPrefix("MSB_REPL_NONCE=") == true)
            return 9
        }
        #expect(interpreter?.execId == 9)
        #expect(pool.nextInput(interpreter!) == Array("8\nx = 'é'".utf8))
        #expect(pool.submit(language: "ruby", code: "", client: 1, localId: 2) { _, _ in 1 } == nil)
    }

    @Test func markersSplitAcrossReadsAreRemoved() {
        let (pool, interpreter) = pool()
        let stdout = Array("partial output".utf8) + interpreter.marker + Array(" exception\n".utf8)
        var seen: [UInt8] = []
        var done = false
        for byte in stdout {
            let (output, finished) = pool.consume(interpreter, bytes: [byte], isStdout: true)
            seen += output
            done = done || finished
        }
        #expect(String(decoding: seen, as: UTF8.self) == "partial output")
        #expect(!done)  // stderr's marker has not come yet
        let (errOutput, finished) = pool.consume(interpreter, bytes: Array("trace\n".utf8) + interpreter.marker + [10], isStdout: false)
        #expect(String(decoding: errOutput, as: UTF8.self) == "trace\n")
        #expect(finished)
        let end = pool.finishCurrent(interpreter)
        #expect(end?.client == 7 && end?.localId == 3 && end?.status == "exception")
    }

    @Test func aDeadInterpreterReportsEveryWaitingRequest() {
        let (pool, interpreter) = pool()
        _ = pool.submit(language: "python", code: "2", client: 8, localId: 4) { _, _ in 99 }
        let waiting = pool.remove(interpreter)
        #expect(waiting.map(\.client) == [7, 8])
        #expect(pool.interpreters.isEmpty)
    }

    @Test func byteSearch() {
        #expect(ByteSearch.find([1, 2], in: [0, 1, 1, 2]) == 2)
        #expect(ByteSearch.find([1, 2], in: [1]) == nil)
        #expect(ByteSearch.partialMatchAtEnd([5, 1, 2], of: [1, 2, 3]) == 2)
        #expect(ByteSearch.partialMatchAtEnd([5, 1, 3], of: [1, 2, 3]) == 0)
    }
}
