import Testing
@testable import MSBProtocol

/// The setup exchange (protocol version 3, the network in 4): the host gives the guest its
/// identity after every start (cold boot or restore of a template), the guest says whether
/// it applied it.
@Suite struct SetupMessageTests {
    static let setup = GuestSetup(hostname: "web-1", wallClockNanoseconds: 1_700_000_000_000_000_001,
                                  entropy: (0..<32).map { UInt8($0 * 7 & 0xff) }, rootDevice: "/dev/vda", restored: true)
    static let network = GuestNetwork(interface: "eth0", macAddress: [0x02, 0x6d, 0x73, 0x62, 0xAB, 0xCD],
                                      address: [10, 0, 2, 15], prefixLength: 24, gateway: [10, 0, 2, 2],
                                      nameserver: [10, 0, 2, 3], mtu: 65520,
                                      hostsEntries: ["10.0.2.2 host.msb.internal", "10.0.2.2 gateway.msb.internal"])
    static var networkedSetup: GuestSetup {
        var setup = Self.setup
        setup.network = Self.network
        return setup
    }

    /// `envelope` framed, with `extra` bytes appended to its body and the length fixed up.
    static func frame(_ envelope: Envelope, appending extra: [UInt8]) -> [UInt8] {
        var bytes = Frame.encode(envelope) + extra
        let length = UInt32(truncatingIfNeeded: bytes.count - Frame.headerBytes)
        bytes[0] = UInt8(truncatingIfNeeded: length >> 24); bytes[1] = UInt8(truncatingIfNeeded: length >> 16)
        bytes[2] = UInt8(truncatingIfNeeded: length >> 8); bytes[3] = UInt8(truncatingIfNeeded: length)
        return bytes
    }

    @Test func setupKeepsItsTypeCodes() {
        // Protocol 5 added the volumes; the current version is checked in FileMessageTests.
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

    @Test func aSetupWithTheNetworkRoundTrips() throws {
        var decoder = FrameDecoder()
        decoder.append(Frame.encode(Envelope(id: 9, .setup(Self.networkedSetup))))
        decoder.append(Frame.encode(Envelope(id: 10, .setup(Self.setup))))
        #expect(try decoder.next() == Envelope(id: 9, .setup(Self.networkedSetup)))
        let withoutNetwork = try decoder.next()
        #expect(withoutNetwork == Envelope(id: 10, .setup(Self.setup)))
        if case .setup(let decoded)? = withoutNetwork?.message { #expect(decoded.network == nil) }
    }

    @Test func theNetworkFollowsTheRestoredFlagInAFixedLayout() {
        var small = GuestSetup(hostname: "", wallClockNanoseconds: 0, entropy: [], rootDevice: "", restored: false)
        small.network = GuestNetwork(interface: "e", macAddress: [2, 0, 0, 0, 0, 1], address: [10, 0, 2, 15],
                                     prefixLength: 24, gateway: [10, 0, 2, 2], nameserver: [10, 0, 2, 3], mtu: 1500,
                                     hostsEntries: ["h"])
        let bytes = Frame.encode(Envelope(id: 1, .setup(small)))
        // ..., restored, has-network flag, interface, MAC, address, prefix (u8), gateway,
        // nameserver, MTU (u32), hosts entries (u32 count, then strings)
        #expect(Array(bytes.dropFirst(Frame.headerBytes + 5 + 4 + 8 + 4 + 4)) == [
            0,
            1,
            0, 0, 0, 1, 0x65,
            0, 0, 0, 6, 2, 0, 0, 0, 0, 1,
            0, 0, 0, 4, 10, 0, 2, 15,
            24,
            0, 0, 0, 4, 10, 0, 2, 2,
            0, 0, 0, 4, 10, 0, 2, 3,
            0, 0, 0x05, 0xDC,
            0, 0, 0, 1, 0, 0, 0, 1, 0x68,
            0, 0, 0, 0,
        ])
    }

    @Test func theSetupBodyHasAFixedLayout() {
        let small = GuestSetup(hostname: "h", wallClockNanoseconds: 0x0102_0304_0506_0708, entropy: [0xAA],
                               rootDevice: "", restored: true)
        let bytes = Frame.encode(Envelope(id: 1, .setup(small)))
        // The host and the static agent are built apart: the order of fields is the contract.
        // hostname (u32 length + bytes), clock (u64), entropy (u32 length + bytes), root device, restored,
        // whether a network follows, the volumes (u32 count, then tag, guest path, read-only each)
        #expect(Array(bytes.dropFirst(Frame.headerBytes + 5)) == [
            0, 0, 0, 1, 0x68,
            1, 2, 3, 4, 5, 6, 7, 8,
            0, 0, 0, 1, 0xAA,
            0, 0, 0, 0,
            1,
            0,
            0, 0, 0, 0,
        ])
    }

    @Test func volumesRoundTripAndTooManyAreRefused() throws {
        var setup = GuestSetup(hostname: "h", wallClockNanoseconds: 1, entropy: [], rootDevice: "", restored: false)
        setup.volumes = [GuestVolume(tag: "msbvol0", guestPath: "/data", readOnly: false),
                         GuestVolume(tag: "msbvol1", guestPath: "/ro", readOnly: true)]
        var decoder = FrameDecoder()
        decoder.append(Frame.encode(Envelope(id: 1, .setup(setup))))
        #expect(try decoder.next() == Envelope(id: 1, .setup(setup)))
        setup.volumes = Array(repeating: GuestVolume(tag: "t", guestPath: "/p", readOnly: false), count: GuestVolume.maximumCount + 1)
        var refusing = FrameDecoder()
        refusing.append(Frame.encode(Envelope(id: 1, .setup(setup))))
        #expect(throws: ProtocolError.self) { _ = try refusing.next() }
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

    @Test func aTruncatedNetworkIsRefused() {
        let bytes = Frame.encode(Envelope(id: 3, .setup(Self.networkedSetup)))
        for dropped in [1, 5, 20] {
            // The setup without its last `dropped` bytes, framed with the right length.
            var short = Array(bytes.dropLast(dropped))
            let length = UInt32(short.count - Frame.headerBytes)
            for index in 0..<4 { short[index] = UInt8(truncatingIfNeeded: length >> (24 - 8 * index)) }
            var decoder = FrameDecoder()
            decoder.append(short)
            #expect(throws: ProtocolError.self) { try decoder.next() }
        }
    }

    @Test func aTruncatedSetupIsRefused() {
        let bytes = Frame.encode(Envelope(id: 3, .setup(Self.setup)))
        // Drop the last byte (the network flag) and fix up the length.
        var short = Array(bytes.dropLast())
        short[3] &-= 1
        var decoder = FrameDecoder()
        decoder.append(short)
        #expect(throws: ProtocolError.self) { try decoder.next() }
    }
}
