import Crypto
import Foundation
import MSBCore
import MSBOS

extension ContentDigest {
    /// Parses a digest a registry sent, refusing every other form with one message.
    static func parse(_ text: String, what: String) throws(MSBError) -> ContentDigest {
        if let digest = ContentDigest(text) { return digest }
        let algorithm = text.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        let shown = algorithm.count <= 16 && algorithm.allSatisfy({ $0.isLetter || $0.isNumber }) ? " (\(algorithm))" : ""
        throw MSBError(.integrity, "the registry sent an invalid \(what) digest\(shown)",
                       hint: "msb accepts sha256:<64 lowercase hex digits>; nothing was pulled")
    }

    package static func of(_ bytes: some DataProtocol) -> ContentDigest {
        ContentDigest(hashed: SHA256.hash(data: bytes))
    }

    init(hashed: SHA256.Digest) { self.init(sha256Bytes: hashed) }

    /// The digest of a file's contents, read in 1 MiB pieces.
    package static func ofFile(_ path: String) throws(MSBError) -> ContentDigest {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MSBError(.stateStore, "cannot read a file to hash it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else {
                if errno == EINTR { continue }
                throw MSBError(.stateStore, "cannot read a file to hash it: \(String(cString: strerror(errno)))")
            }
            hasher.update(data: buffer[0..<n])
        }
        return ContentDigest(hashed: hasher.finalize())
    }
}
