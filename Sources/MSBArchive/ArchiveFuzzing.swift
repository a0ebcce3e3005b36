import Glibc
import MSBCore

/// The libFuzzer entry point for the archive code: one input is applied as an image layer
/// (gzip, zstd or plain tar) into a scratch root, then unpacked as a `msb cp` stream, with
/// small limits so each run stays fast. Refusals and malformed input are expected results;
/// a crash, a hang or a file outside the scratch directory is a finding. Wire it as:
///
///     @_cdecl("LLVMFuzzerTestOneInput")
///     func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
///         ArchiveFuzzing.run(Array(UnsafeBufferPointer(start: data, count: size))); return 0
///     }
package enum ArchiveFuzzing {
    static let limits = ArchiveLimits(maxEntries: 2_000, maxTotalBytes: 8 << 20)

    /// The scratch directory of this process (made once, emptied after every input).
    package static let scratch: String = {
        var template = Array("/tmp/msb-archive-fuzz.XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        return made.map { String(cString: $0) } ?? "/tmp"
    }()

    package static func run(_ bytes: [UInt8]) {
        let directory = scratch
        guard directory != "/tmp" else { return }
        for sub in ["root", "copy"] { mkdir(directory + "/" + sub, 0o700) }
        if var layer = try? LayerExtractor(root: directory + "/root", limits: limits) {
            try? layer.apply(label: "fuzz") { (limits: ArchiveLimits) throws(MSBError) in
                try ArchiveReader(bytes: bytes, compression: .detect, limits: limits)
            }
        }
        if let copy = try? CopyExtractor(workDirectory: directory + "/copy", entryName: "a"),
           let reader = try? ArchiveReader(bytes: bytes, compression: .none, limits: limits) {
            try? copy.extract(from: reader)
        }
        let top = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if top >= 0 {
            for sub in ["root", "copy"] {
                // Whatever an input left behind (read-only directories included) goes.
                try? ScopedDirectory.removeWritable(top, sub)
            }
            close(top)
        }
    }
}
