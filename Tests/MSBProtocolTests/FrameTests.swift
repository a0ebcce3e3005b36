import Testing
@testable import MSBProtocol

@Suite struct FrameTests {
    static let samples: [Message] = [
        .hello(Hello(software: "test")), .helloReply(Hello(version: 1, software: "agent")),
        .exec(ExecRequest(argv: ["sh", "-c", "echo ü"], environment: ["A=B"], workingDirectory: "/tmp",
                          attachStdin: true, tty: true, rows: 40, cols: 120, timeoutMilliseconds: 1500)),
        .started(pid: 42), .stdin([0, 1, 255]), .stdinClose, .stdout(Array(0...255)), .stderr([]),
        .signal(15), .resize(rows: 10, cols: 20), .exited(ExitStatus(code: 3, signal: 0, timedOut: true)),
        .execFailed(ExecFailure(kind: .notFound, message: "nope")), .shutdown, .shutdownAck,
        .error("bad"), .stopSandbox(force: true), .stopped("stopped by user"), .detach, .statsRequest,
        .drainSandbox(timeoutMilliseconds: 0), .drainSandbox(timeoutMilliseconds: UInt64.max), .drainStarted,
        .stats(GuestStats(memoryTotalKiB: 1, memoryAvailableKiB: 2, diskUsedBytes: 3, uptimeMilliseconds: 4, cpuPercentMilli: 5)),
        .stats(GuestStats(memoryTotalKiB: 1, memoryAvailableKiB: 2, diskUsedBytes: 3, uptimeMilliseconds: 4, cpuPercentMilli: 5,
                          networkReceivedBytes: 6, networkSentBytes: UInt64.max)),
        .replRun(language: "python", code: "x = 1\nprint(x)"), .replDone(ReplOutcome(status: "exception", message: "boom")),
        .setup(GuestSetup(hostname: "web", wallClockNanoseconds: 1_700_000_000_123_456_789, entropy: Array(0..<64),
                          rootDevice: "/dev/vda", restored: true)),
        .setup(GuestSetup(hostname: "", wallClockNanoseconds: 0, entropy: [], rootDevice: "", restored: false)),
        .setup(GuestSetup(hostname: "net", wallClockNanoseconds: 1, entropy: [9], rootDevice: "/dev/vda", restored: false,
                          network: GuestNetwork(interface: "eth0", macAddress: [0x02, 0x6d, 0x73, 0x62, 0, 1],
                                                address: [10, 0, 2, 15], prefixLength: 24, gateway: [10, 0, 2, 2],
                                                nameserver: [10, 0, 2, 3], mtu: 65520,
                                                hostsEntries: ["10.0.2.2 host.msb.internal"]))),
        .setupDone(""), .setupDone("cannot mount /dev/vda: No such device"),
    ]

    @Test func everyMessageRoundTrips() throws {
        for (index, message) in Self.samples.enumerated() {
            var decoder = FrameDecoder()
            decoder.append(Frame.encode(Envelope(id: UInt32(index), message)))
            let decoded = try decoder.next()
            #expect(decoded == Envelope(id: UInt32(index), message))
            #expect(try decoder.next() == nil)
        }
    }

    @Test func partialReadsAssembleWholeFrames() throws {
        var bytes: [UInt8] = []
        for (index, message) in Self.samples.enumerated() {
            bytes += Frame.encode(Envelope(id: UInt32(index), message))
        }
        var decoder = FrameDecoder()
        var decoded: [Envelope] = []
        for byte in bytes {
            decoder.append([byte])
            while let envelope = try decoder.next() { decoded.append(envelope) }
        }
        #expect(decoded.map(\.message) == Self.samples)
        #expect(decoder.bufferedBytes == 0)
    }

    @Test func oversizedFrameIsRejectedBeforeItArrives() {
        var decoder = FrameDecoder()
        let length = UInt32(Frame.maxPayloadBytes + 1)
        decoder.append([UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)])
        #expect(throws: ProtocolError.frameTooLarge(Frame.maxPayloadBytes + 1)) { try decoder.next() }
    }

    @Test func garbageIsRejected() {
        var short = FrameDecoder()
        short.append([0, 0, 0, 2, 1, 2])
        #expect(throws: ProtocolError.self) { try short.next() }

        var unknown = FrameDecoder()
        unknown.append([0, 0, 0, 5, 200, 0, 0, 0, 1])
        #expect(throws: ProtocolError.unknownMessageType(200)) { try unknown.next() }

        // A stdout frame whose data length claims more than the frame holds.
        var truncated = FrameDecoder()
        truncated.append([0, 0, 0, 9, 7, 0, 0, 0, 1, 0, 0, 0, 9])
        #expect(throws: ProtocolError.truncated) { try truncated.next() }

        // Trailing bytes after a complete message body.
        var trailing = FrameDecoder()
        trailing.append([0, 0, 0, 6, 6, 0, 0, 0, 1, 99])
        #expect(throws: ProtocolError.self) { try trailing.next() }

        // Invalid UTF-8 in a string.
        var badText = FrameDecoder()
        badText.append([0, 0, 0, 11, 15, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xfe])
        #expect(throws: ProtocolError.malformed("string is not UTF-8")) { try badText.next() }
    }

    @Test func incompleteFrameWaitsForMoreBytes() throws {
        let bytes = Frame.encode(Envelope(id: 9, .stdout(Array(repeating: 7, count: 1000))))
        var decoder = FrameDecoder()
        decoder.append(bytes.prefix(500))
        #expect(try decoder.next() == nil)
        decoder.append(bytes.dropFirst(500))
        #expect(try decoder.next()?.id == 9)
    }
}

@Suite struct FrameChunkTests {
    @Test func chunksCoverTheBytesInOrderAndNeverExceedTheLimit() {
        let bytes = (0..<(2 * Frame.maxChunkBytes + 5)).map { UInt8(truncatingIfNeeded: $0) }
        let chunks = Frame.chunks(bytes)
        #expect(chunks.map(\.count) == [Frame.maxChunkBytes, Frame.maxChunkBytes, 5])
        #expect(chunks.flatMap { $0 } == bytes)
        #expect(Frame.chunks([]).isEmpty)
    }
}
