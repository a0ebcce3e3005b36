import CMSBSys
import Foundation
import MSBCore
import MSBOS

/// QEMU's machine protocol (QMP) over the socket pair QEMU was started with: one JSON
/// object per line each way. QEMU runs the guest, so what it says is bounded (line
/// length) and waited for with a deadline, like anything else a guest could influence.
package final class QMPClient {
    /// Longest line taken from QEMU; a longer one ends the connection.
    static let maxLineBytes = 1 << 20
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var greeted = false
    private var ready = false

    /// `fd` stays owned by the caller.
    package init(fd: Int32) {
        self.fd = fd
        _ = msb_set_nonblocking(fd, 1)
    }

    /// Reads QEMU's greeting and enters command mode (once).
    private func negotiate(deadline: Double) throws(MSBError) {
        guard !ready else { return }
        if !greeted {
            _ = try readMessage(deadline: deadline)
            greeted = true
        }
        // Ready for the nested execute; taken back if QEMU refuses command mode.
        ready = true
        do { _ = try execute("qmp_capabilities", deadline: deadline) } catch {
            ready = false
            throw error
        }
    }

    /// Runs one command and returns its `return` value; a QMP error is thrown with
    /// QEMU's description. `descriptor` travels with the command (for `getfd`).
    @discardableResult
    package func execute(_ command: String, arguments: [String: Any] = [:], passing descriptor: Int32? = nil,
                         deadline: Double) throws(MSBError) -> Any {
        try negotiate(deadline: deadline)
        var request: [String: Any] = ["execute": command]
        if !arguments.isEmpty { request["arguments"] = arguments }
        guard let body = try? JSONSerialization.data(withJSONObject: request) else {
            throw MSBError(.internalError, "cannot encode the QMP command \(command)")
        }
        try send(Array(body) + [0x0A], descriptor: descriptor, deadline: deadline)
        while true {
            let reply = try readMessage(deadline: deadline)
            if reply["event"] != nil { continue }
            if let value = reply["return"] { return value }
            if let error = reply["error"] as? [String: Any] {
                // Cut by scalars: one Character can hold any number of combining marks.
                let text = PrintableText.escaped(String(describing: error["desc"] ?? "unknown error"), maxScalars: 300)
                throw MSBError(.vmmFailure, "QEMU refused \(command): \(text)")
            }
        }
    }

    private func send(_ bytes: [UInt8], descriptor: Int32?, deadline: Double) throws(MSBError) {
        var offset = 0
        var pendingDescriptor = descriptor
        while offset < bytes.count {
            let sent: Int = bytes[offset...].withUnsafeBytes { raw in
                if let fd = pendingDescriptor { return msb_send_with_fd(self.fd, raw.baseAddress, UInt(raw.count), fd) }
                return Glibc.send(self.fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                offset += sent
                pendingDescriptor = nil
            } else if sent < 0, errno == EAGAIN || errno == EINTR {
                try wait(for: Int16(POLLOUT), deadline: deadline)
            } else {
                throw MSBError(.vmmFailure, "QEMU's control channel closed: \(String(cString: strerror(errno)))")
            }
        }
    }

    private func readMessage(deadline: Double) throws(MSBError) -> [String: Any] {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeFirst(newline + 1)
                guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw MSBError(.vmmFailure, "QEMU sent a malformed control message")
                }
                return object
            }
            guard buffer.count <= Self.maxLineBytes else { throw MSBError(.vmmFailure, "QEMU sent an oversized control message") }
            try wait(for: Int16(POLLIN), deadline: deadline)
            let bytes: [UInt8]?
            do { bytes = try FileDescriptorIO.readSome(fd) } catch {
                throw MSBError(.vmmFailure, "QEMU's control channel failed: \(error)")
            }
            guard let bytes else { throw MSBError(.vmmFailure, "QEMU closed its control channel") }
            buffer += bytes
        }
    }

    private func wait(for events: Int16, deadline: Double) throws(MSBError) {
        let remaining = deadline - MonotonicClock.now()
        guard remaining > 0 else { throw MSBError(.timeout, "QEMU did not answer on its control channel in time") }
        var entry = pollfd(fd: fd, events: events, revents: 0)
        _ = poll(&entry, 1, Int32(clamping: Int((remaining * 1000).rounded(.up))))
    }
}
