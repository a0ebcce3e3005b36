import Foundation
import Glibc
import MSBOS
import Testing

/// A scripted QEMU for QMPClientTests, on the other end of a socket pair: a thread that
/// runs `script` with blocking reads and writes, recording the command lines it read and
/// the descriptors that came with them.
final class FakeQEMU: @unchecked Sendable {
    let clientFd: Int32
    private let peerFd: Int32
    private var buffer: [UInt8] = []
    private let done = DispatchSemaphore(value: 0)
    /// Written by the fake's thread; read by the test only after `finish()`. The test
    /// closes the received descriptors.
    private(set) var received: [[String: Any]] = []
    private(set) var receivedDescriptors: [Int32] = []

    init(_ script: @escaping @Sendable (FakeQEMU) -> Void) throws {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw SystemError("socketpair")
        }
        clientFd = pair[0]
        peerFd = pair[1]
        Thread { [self] in
            script(self)
            done.signal()
        }.start()
    }

    /// Closes the client's end (so a fake blocked in a read sees EOF) and waits for the script.
    func finish() {
        close(clientFd)
        #expect(done.wait(timeout: .now() + 10) == .success, "the fake QEMU did not finish")
        close(peerFd)
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) { _ = sendOnce(bytes) }

    /// Sends all of `bytes`; false once the client's end is gone.
    func sendOnce(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(peerFd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    func closeEarly() { shutdown(peerFd, Int32(SHUT_RDWR)) }

    /// The next command line, parsed; nil at EOF. Read with recvmsg, so descriptors
    /// passed with SCM_RIGHTS are kept.
    @discardableResult
    func readCommand() -> [String: Any]? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeFirst(newline + 1)
                let object = (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]) ?? ["unparsed": line]
                received.append(object)
                return object
            }
            guard let chunk = receive() else { return nil }
            buffer += chunk
        }
    }

    private func receive() -> [UInt8]? {
        var data = [UInt8](repeating: 0, count: 4096)
        let controlBytes = 64
        let control = UnsafeMutableRawPointer.allocate(byteCount: controlBytes, alignment: 8)
        defer { control.deallocate() }
        control.initializeMemory(as: UInt8.self, repeating: 0, count: controlBytes)
        var controlLength = 0
        let count = data.withUnsafeMutableBytes { raw -> Int in
            var vector = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                var message = msghdr()
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                message.msg_control = control
                message.msg_controllen = controlBytes
                let n = recvmsg(peerFd, &message, Int32(MSG_CMSG_CLOEXEC))
                controlLength = Int(message.msg_controllen)
                return n
            }
        }
        guard count > 0 else { return nil }
        // struct cmsghdr on x86_64: size_t cmsg_len, int cmsg_level, int cmsg_type, data
        // (CMSG_* are C macros, not visible to Swift).
        var offset = 0
        while offset + 16 <= controlLength {
            let length = control.load(fromByteOffset: offset, as: Int.self)
            let level = control.load(fromByteOffset: offset + 8, as: Int32.self)
            let type = control.load(fromByteOffset: offset + 12, as: Int32.self)
            guard length >= 16 else { break }
            if level == SOL_SOCKET && type == 1 /* SCM_RIGHTS */ {
                for index in 0..<(length - 16) / 4 {
                    receivedDescriptors.append(control.load(fromByteOffset: offset + 16 + index * 4, as: Int32.self))
                }
            }
            offset += (length + 7) & ~7
        }
        return Array(data[0..<count])
    }

    /// The greeting, then the reply to `qmp_capabilities`.
    func negotiate() {
        send(#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}"# + "\n")
        readCommand()
        send(#"{"return": {}}"# + "\n")
    }
}
