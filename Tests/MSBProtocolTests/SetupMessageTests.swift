import Testing
@testable import MSBProtocol

/// The setup exchange of protocol version 3: the host gives the guest its identity after
/// every start (cold boot or restore of a template), the guest says whether it applied it.
@Suite struct SetupMessageTests {
    static let setup = GuestSetup(hostname: "web-1", wallClockNanoseconds: 1_700_000_000_000_000_001,
                                  entropy: (0..<32).map { UInt8($0 * 7 & 0xff) }, rootDevice: "/dev/vda", restored: true)

    /// `envelope` framed, with `extra` bytes appended to its body and the length fixed up.
    static func frame(_ envelope: Envelope, appending extra: [UInt8]) -> [UInt8] {
        var bytes = Frame.encode(envelope) + extra
        let length = UInt32(truncatingIfNeeded: bytes.count - Frame.headerBytes)
        bytes[0] = UInt8(truncatingIfNeeded: length >> 24); bytes[1] = UInt8(truncatingIfNeeded: length >> 16)
        bytes[2] = UInt8(truncatingIfNeeded: length >> 8); bytes[3] = UInt8(truncatingIfNeeded: length)
        return bytes
    }

    @Test func theVersionThatIntroducedSetupIsCurrent() {
        #expect(Hello.currentVersion == 3)
        #expect(Hello(software: "msb").version == 3)
        #expect(Message.setup(Self.setup).typeCode == 24)
        #expect(Message.setupDone("").typeCode == 25)
    }

    @Test func setupAndItsAnswerRoundTrip() throws {
        var decoder = FrameDecoder()
        decoder.append(Frame.encode(Envelope(id: 7, .setup(Self.setup))))
        decoder.append(Frame.encode(Envelope(id: 7, .setupDone(""))))
        decoder.append(Frame.encode(Envelope(id: 8, .setupDone("cannot set the clock: Operation not permitted"))))
        #expect(try decoder.next() == Envelope(id: 7, .setup(Self.setup)))
        #expect(try decoder.next() == Envelope(id: 7, .setupDone("")))
        #expect(try decoder.next() == Envelope(id: 8, .setupDone("cannot set the clock: Operation not permitted")))
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedBytes == 0)
    }

    @Test func theSetupBodyHasAFixedLayout() {
        let small = GuestSetup(hostname: "h", wallClockNanoseconds: 0x0102_0304_0506_0708, entropy: [0xAA],
                               rootDevice: "", restored: true)
        let bytes = Frame.encode(Envelope(id: 1, .setup(small)))
        // The host and the static agent are built apart: the order of fields is the contract.
        // hostname (u32 length + bytes), clock (u64), entropy (u32 length + bytes), root device, restored
        #expect(Array(bytes.dropFirst(Frame.headerBytes + 5)) == [
            0, 0, 0, 1, 0x68,
            1, 2, 3, 4, 5, 6, 7, 8,
            0, 0, 0, 1, 0xAA,
            0, 0, 0, 0,
            1,
        ])
    }

    @Test(arguments: [[UInt8]([0]), [1, 2, 3, 4]])
    func aSetupWithTrailingBytesIsRefused(_ extra: [UInt8]) {
        var decoder = FrameDecoder()
        decoder.append(Self.frame(Envelope(id: 3, .setup(Self.setup)), appending: extra))
        #expect(throws: ProtocolError.malformed("trailing bytes after message type 24")) { try decoder.next() }

        var answer = FrameDecoder()
        answer.append(Self.frame(Envelope(id: 3, .setupDone("")), appending: extra))
        #expect(throws: ProtocolError.malformed("trailing bytes after message type 25")) { try answer.next() }
    }

    @Test func aTruncatedSetupIsRefused() {
        let bytes = Frame.encode(Envelope(id: 3, .setup(Self.setup)))
        // Drop the last byte (the `restored` flag) and fix up the length.
        var short = Array(bytes.dropLast())
        short[3] &-= 1
        var decoder = FrameDecoder()
        decoder.append(short)
        #expect(throws: ProtocolError.self) { try decoder.next() }
    }
}
