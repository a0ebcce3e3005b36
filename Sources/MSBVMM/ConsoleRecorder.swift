import Foundation
import MSBOS

/// Records a guest's serial console to a file that cannot grow without bound: the guest
/// controls what it prints (`cat /dev/zero > /dev/ttyS0`). At `capBytes` the file moves to
/// `PATH.1` (replacing the older one) and a new one starts, so at most twice the cap is
/// kept: the latest output. Reads on its own thread until the VMM closes its end.
package final class ConsoleRecorder: @unchecked Sendable {
    package static let capBytes = 1 << 20

    private let fd: Int32
    private let path: String
    private let capBytes: Int

    /// Takes ownership of `fd`, the supervisor's end of the console socket.
    package init(fd: Int32, path: String, capBytes: Int = ConsoleRecorder.capBytes) {
        self.fd = fd
        self.path = path
        self.capBytes = capBytes
    }

    package func start() {
        Thread.detachNewThread { [self] in record() }
    }

    private func record() {
        defer { close(fd) }
        var file = openFresh()
        var written = 0
        while let bytes = try? FileDescriptorIO.readSome(fd), !bytes.isEmpty {
            if written + bytes.count > capBytes {
                if file >= 0 { close(file) }
                rename(path, path + ".1")
                file = openFresh()
                written = 0
            }
            if file >= 0, (try? FileDescriptorIO.writeAll(file, bytes)) != nil { written += bytes.count }
        }
        if file >= 0 { close(file) }
    }

    private func openFresh() -> Int32 {
        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
    }
}
