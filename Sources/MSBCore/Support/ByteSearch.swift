/// Finding end-of-output markers in streamed bytes (the shell REPL and the code REPL
/// both delimit each evaluation's output with one).
package enum ByteSearch {
    /// The first index where `needle` starts in `haystack`.
    package static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return start }
        }
        return nil
    }

    /// How many trailing bytes of `buffer` could be the start of `needle` split across
    /// reads: those must be held back until more bytes arrive.
    package static func partialMatchAtEnd(_ buffer: [UInt8], of needle: [UInt8]) -> Int {
        var keep = min(needle.count - 1, buffer.count)
        while keep > 0 {
            if buffer[(buffer.count - keep)...].elementsEqual(needle[..<keep]) { return keep }
            keep -= 1
        }
        return 0
    }
}
