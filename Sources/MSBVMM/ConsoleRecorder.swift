import Foundation
import MSBCore
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
        let file = BoundedLogFile(path: path, capBytes: capBytes, truncate: true)
        while let bytes = try? FileDescriptorIO.readSome(fd), !bytes.isEmpty { file.append(bytes) }
    }
}
