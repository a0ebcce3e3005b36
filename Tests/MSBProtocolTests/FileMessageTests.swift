import Testing
@testable import MSBProtocol

/// The Files API's messages (protocol 6): they round-trip, and what a guest sends is
/// bounded by the decoder whatever it claims.
@Suite struct FileMessageTests {
    @Test func theVersionThatAddedFilesIsCurrent() {
        #expect(Hello.currentVersion == 6)
        #expect(Hello(software: "msb").version == 6)
        #expect(Message.fileRequest(FileRequest(.stat, path: "/")).typeCode == 30)
        #expect(Message.fileReply(FileReply()).typeCode == 31)
    }

    @Test func requestsAndRepliesRoundTrip() throws {
        let messages: [Message] = [
            .fileRequest(FileRequest(.write, path: "/root/a b", offset: 1 << 40, data: Array(0...255), mode: 0o755)),
            .fileRequest(FileRequest(.rename, path: "/a", destination: "/b")),
            .fileRequest(FileRequest(.remove, path: "/srv", recursive: true)),
            .fileRequest(FileRequest(.read, path: "/f", offset: 7, length: UInt32(FileRequest.maxChunkBytes))),
            .fileReply(FileReply(data: [1, 2, 3], total: 3)),
            .fileReply(.failure(.notFound, "No such file or directory")),
            .fileReply(FileReply(entries: [FileEntry(name: "é", kind: .directory, sizeBytes: .max, mode: 0o7777, modifiedSeconds: -1),
                                           FileEntry(name: "l", kind: .symlink, sizeBytes: 0, mode: 0o777, modifiedSeconds: 1_700_000_000)],
                                 total: 2)),
        ]
        var decoder = FrameDecoder()
        for (index, message) in messages.enumerated() { decoder.append(Frame.encode(Envelope(id: UInt32(index), message))) }
        for (index, message) in messages.enumerated() {
            #expect(try decoder.next() == Envelope(id: UInt32(index), message))
        }
    }

    @Test func aFullChunkFitsOneFrame() throws {
        let reply = Message.fileReply(FileReply(data: [UInt8](repeating: 0xff, count: FileRequest.maxChunkBytes), total: .max))
        var decoder = FrameDecoder()
        decoder.append(Frame.encode(Envelope(id: 1, reply)))
        #expect(try decoder.next()?.message == reply)
        let longest = String(repeating: "n", count: FileEntry.maxNameBytes)
        let page = Message.fileReply(FileReply(entries: (0..<FileReply.maxEntries).map { _ in
            FileEntry(name: longest, kind: .file, sizeBytes: 0, mode: 0, modifiedSeconds: 0)
        }))
        #expect(Frame.encode(Envelope(id: 1, page)).count <= Frame.maxPayloadBytes + Frame.headerBytes)
    }

    /// A reply built by hand: error code, message, data, entry count, then the total.
    private func rawReply(errorCode: UInt8 = 0, dataCount: UInt32 = 0, entryCount: UInt32 = 0, kind: UInt8 = 1) -> [UInt8] {
        var w = WireWriter()
        w.u8(errorCode); w.string(""); w.u32(dataCount)
        w.u32(entryCount)
        if entryCount > 0 && entryCount <= 1 { w.string("x"); w.u8(kind); w.u64(0); w.u32(0); w.u64(0) }
        w.u64(0)
        return w.bytes
    }

    @Test func hostileRepliesAreRefusedByTheDecoder() {
        let cases: [([UInt8], String)] = [
            (rawReply(entryCount: UInt32.max), "an entry count of 4 billion"),
            (rawReply(entryCount: UInt32(FileReply.maxEntries) + 1), "one entry more than a page"),
            (rawReply(errorCode: 200), "an unknown error kind"),
            (rawReply(entryCount: 1, kind: 9), "an unknown file kind"),
            (rawReply(dataCount: UInt32.max), "a data length past the frame"),
        ]
        for (body, label) in cases {
            var reader = WireReader(body)
            #expect(throws: ProtocolError.self, "\(label)") { try FileReply.decode(from: &reader) }
        }
        var oversized = WireWriter()
        oversized.u8(0); oversized.string(""); oversized.data([UInt8](repeating: 0, count: FileRequest.maxChunkBytes + 1))
        oversized.u32(0); oversized.u64(0)
        var reader = WireReader(oversized.bytes)
        #expect(throws: ProtocolError.self) { try FileReply.decode(from: &reader) }
    }
}
