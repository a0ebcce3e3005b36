import CMSBSys
import Foundation
import MSBArchive
import MSBCore
import MSBOS

/// The host side of `msb cp`'s tar streams, in process through libarchive (no host `tar`).
/// The exec session pushes or pulls bytes on its own thread; a pipe and one worker thread
/// turn that into the reads and writes libarchive does.
enum CopyStreams {
    /// Unpacks the stream a sandbox sends into `work` with `CopyExtractor`'s rules. The worker
    /// drains the pipe to its end whatever happens, so `write` never blocks for good.
    final class Unpacking: @unchecked Sendable {
        private let readFd: Int32
        private var writeFd: Int32
        private let done = DispatchSemaphore(value: 0)
        private var outcome: Result<Int, MSBError> = .failure(MSBError(.internalError, "the copy was not unpacked"))

        init(work: String, entryName: String) throws(MSBError) {
            var pipe: [Int32] = [-1, -1]
            guard msb_pipe(&pipe, 0) == 0 else { throw MSBError(.internalError, "cannot create a pipe: \(String(cString: strerror(errno)))") }
            readFd = pipe[0]
            writeFd = pipe[1]
            Thread.detachNewThread { [self] in
                outcome = Result { () throws(MSBError) -> Int in
                    let extractor = try CopyExtractor(workDirectory: work, entryName: entryName)
                    let reader = try ArchiveReader(fd: readFd, compression: .none, limits: .copies, label: "the archive from the sandbox")
                    try extractor.extract(from: reader)
                    return extractor.strippedModes
                }
                while let chunk = try? FileDescriptorIO.readSome(readFd), !chunk.isEmpty {}
                close(readFd)
                done.signal()
            }
        }

        func write(_ chunk: [UInt8]) {
            if writeFd >= 0 { try? FileDescriptorIO.writeAll(writeFd, chunk) }
        }

        /// Ends the stream and waits for the worker: how many setuid/setgid/sticky modes were stripped.
        func finish() -> Result<Int, MSBError> {
            if writeFd >= 0 { close(writeFd); writeFd = -1 }
            done.wait()
            return outcome
        }
    }

    /// Writes a host file or tree as a tar stream that an exec reads as its stdin (`archiveFd`).
    final class Packing: @unchecked Sendable {
        private(set) var archiveFd: Int32
        private let done = DispatchSemaphore(value: 0)
        private var outcome: Result<Void, MSBError> = .success(())
        /// The failure was only the exec no longer reading (the guest's side ended first).
        private(set) var readerGone = false

        init(source: String, as name: String) throws(MSBError) {
            var pipe: [Int32] = [-1, -1]
            guard msb_pipe(&pipe, 0) == 0 else { throw MSBError(.internalError, "cannot create a pipe: \(String(cString: strerror(errno)))") }
            archiveFd = pipe[0]
            let writeFd = pipe[1]
            Thread.detachNewThread { [self] in
                var writer: ArchiveWriter?
                outcome = Result { () throws(MSBError) in
                    writer = try ArchiveWriter(fd: writeFd)
                    try writer?.addTree(at: source, as: name)
                    try writer?.finish()
                }
                readerGone = writer?.readerGone ?? false
                close(writeFd)
                done.signal()
            }
        }

        /// Closes our end (a writer still blocked gets EPIPE) and waits for the worker.
        func finish() -> Result<Void, MSBError> {
            if archiveFd >= 0 { close(archiveFd); archiveFd = -1 }
            done.wait()
            return outcome
        }
    }

    /// Makes `parent/.msb-cp.XXXXXX`, where a copy is unpacked before it is moved into place.
    static func workDirectory(in parent: String) throws(MSBError) -> String {
        var template = Array((parent + "/.msb-cp.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ $0.baseAddress.flatMap { mkdtemp($0) } }).map({ String(cString: $0) }) else {
            throw MSBError(.internalError, "cannot create a directory in \(parent): \(String(cString: strerror(errno)))")
        }
        return made
    }

    static func removeWorkDirectory(_ work: String) {
        let url = URL(fileURLWithPath: work)
        let parent = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        try? ScopedDirectory.removeWritable(parent, url.lastPathComponent)
        close(parent)
    }
}
