@testable import MSBServer
import Testing

@Suite struct OutputCollectorTests {
    @Test func linesKeepTheirStreamAndOrder() {
        let output = OutputCollector(limitBytes: 1 << 20)
        output.append(.stdout, Array("one\ntw".utf8))
        output.append(.stderr, Array("oops\r\n".utf8))
        output.append(.stdout, Array("o\nlast".utf8))
        #expect(output.lines() == [
            ["stream": "stdout", "text": "one"], ["stream": "stderr", "text": "oops"],
            ["stream": "stdout", "text": "two"], ["stream": "stdout", "text": "last"],
        ])
    }

    @Test func binaryBecomesReplacementCharactersAndBlankLinesStay() {
        let output = OutputCollector(limitBytes: 1 << 20)
        output.append(.stdout, [0xff, 0x41, 10, 10])
        #expect(output.lines() == [["stream": "stdout", "text": "\u{fffd}A"], ["stream": "stdout", "text": ""]])
    }

    @Test func outputOverTheLimitIsCutWithANote() {
        let output = OutputCollector(limitBytes: 8)
        output.append(.stdout, Array("12345\n67890\nabc\n".utf8))
        let lines = output.lines()
        #expect(lines.prefix(2) == [["stream": "stdout", "text": "12345"], ["stream": "stdout", "text": "67"]])
        #expect(lines.last == ["stream": "stderr", "text": "msb: stdout cut after 8 bytes (8 more bytes not kept)"])
    }
}
