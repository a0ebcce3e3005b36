import MSBProtocol

extension FuzzTargets {
    /// Host <-> guest framing as the guest (the attacker) controls it: the bytes arrive in
    /// reads of any size, so the first byte picks the read size and the rest is the stream.
    /// Every frame that decodes must survive an encode/decode round trip unchanged.
    static func fuzzFrameDecoding(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let readBytes = Int(first) + 1
        let stream = bytes.dropFirst()
        var decoder = FrameDecoder()
        var offset = stream.startIndex
        while offset < stream.endIndex {
            let end = min(offset + readBytes, stream.endIndex)
            decoder.append(stream[offset..<end])
            offset = end
            do {
                while let envelope = try decoder.next() { checkRoundTrip(envelope) }
            } catch {
                return  // a decoding error ends the connection, as in AgentChannel
            }
        }
    }

    private static func checkRoundTrip(_ envelope: Envelope) {
        var again = FrameDecoder()
        again.append(Frame.encode(envelope))
        do {
            guard let decoded = try again.next() else { violated("a re-encoded frame is incomplete") }
            guard decoded == envelope else { violated("round trip changed \(envelope) into \(decoded)") }
        } catch {
            violated("a re-encoded frame does not decode: \(error)")
        }
    }
}
