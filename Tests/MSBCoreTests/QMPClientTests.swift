import Foundation
import Glibc
import MSBCore
import MSBOS
@testable import MSBVMM
import Testing

/// The QMP client against a scripted QEMU on the other end of a socket pair. QEMU runs the
/// guest, so everything it sends is bounded and waited for with a deadline.
@Suite struct QMPClientTests {
    static func deadline(_ seconds: Double = 10) -> Double { MonotonicClock.now() + seconds }

    /// Runs `body` and returns the MSBError it threw (recording an issue when it threw none).
    static func failure(_ body: () throws(MSBError) -> Void) -> MSBError? {
        do {
            try body()
            Issue.record("no error was thrown")
            return nil
        } catch {
            return error
        }
    }

    @Test func negotiatesOnceAndReturnsTheReturnValue() throws {
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            qemu.send(#"{"return": {"status": "running", "running": true}}"# + "\n")
            qemu.readCommand()
            qemu.send(#"{"return": {}}"# + "\n")
        }
        let client = QMPClient(fd: qemu.clientFd)
        let status = try client.execute("query-status", deadline: Self.deadline()) as? [String: Any]
        #expect(status?["status"] as? String == "running")
        #expect(status?["running"] as? Bool == true)
        try client.execute("migrate-incoming", arguments: ["uri": "fd:state"], deadline: Self.deadline())
        qemu.finish()

        #expect(qemu.received.map { $0["execute"] as? String } == ["qmp_capabilities", "query-status", "migrate-incoming"])
        #expect(qemu.received[0]["arguments"] == nil)
        #expect((qemu.received[2]["arguments"] as? [String: Any])?["uri"] as? String == "fd:state")
    }

    @Test func eventsBeforeTheReplyAreSkipped() throws {
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            qemu.send(#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"# + "\n"
                + #"{"timestamp": {"seconds": 1, "microseconds": 3}, "event": "MIGRATION", "data": {"status": "completed"}}"# + "\n")
            qemu.send(#"{"return": {"status": "paused"}}"# + "\n")
        }
        let client = QMPClient(fd: qemu.clientFd)
        let status = try client.execute("query-status", deadline: Self.deadline()) as? [String: Any]
        #expect(status?["status"] as? String == "paused")
        qemu.finish()
    }

    @Test func anErrorReplyIsThrownWithQEMUsDescription() throws {
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            qemu.send(#"{"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}"# + "\n")
        }
        let client = QMPClient(fd: qemu.clientFd)
        let error = Self.failure { () throws(MSBError) in try client.execute("getfd", arguments: ["fdname": "x"], deadline: Self.deadline()) }
        #expect(error?.code == .vmmFailure)
        #expect(error?.message == "QEMU refused getfd: No file descriptor supplied via SCM_RIGHTS")
        qemu.finish()
    }

    /// QEMU runs the guest: its text is escaped and cut before it reaches a log or a user.
    /// The cut counts scalars, since one character can be any number of combining marks.
    @Test(arguments: ["terminal escapes", "one character of combining marks"])
    func QEMUsDescriptionIsEscapedAndBounded(_ attack: String) throws {
        let description = attack == "terminal escapes"
            ? "\u{1B}[2J" + String(repeating: "x", count: 5000)
            : "a" + String(repeating: "\u{301}", count: 200_000)
        let reply = try JSONSerialization.data(withJSONObject: ["error": ["class": "GenericError", "desc": description]])
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            qemu.send(Array(reply) + [0x0A])
        }
        let client = QMPClient(fd: qemu.clientFd)
        let error = Self.failure { () throws(MSBError) in try client.execute("cont", deadline: Self.deadline()) }
        qemu.finish()
        let message = try #require(error?.message)
        #expect(message.hasPrefix("QEMU refused cont: "))
        #expect(message.unicodeScalars.count < 400, "\(message.unicodeScalars.count) scalars")
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 })
    }

    @Test func anOversizedLineEndsTheConnection() throws {
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            // No newline ever: the client must stop buffering past its limit.
            qemu.send(#"{"return": ""# + String(repeating: "a", count: QMPClient.maxLineBytes + 16))
        }
        let client = QMPClient(fd: qemu.clientFd)
        let error = Self.failure { () throws(MSBError) in try client.execute("query-status", deadline: Self.deadline()) }
        #expect(error?.code == .vmmFailure)
        #expect(error?.message == "QEMU sent an oversized control message")
        qemu.finish()
    }

    @Test(arguments: ["{not json", "[1, 2]", "\"just a string\""])
    func aMalformedLineIsRefused(_ line: String) throws {
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            qemu.send(line + "\n")
        }
        let client = QMPClient(fd: qemu.clientFd)
        let error = Self.failure { () throws(MSBError) in try client.execute("query-status", deadline: Self.deadline()) }
        #expect(error?.code == .vmmFailure)
        #expect(error?.message == "QEMU sent a malformed control message")
        qemu.finish()
    }

    @Test func aMalformedGreetingIsRefused() throws {
        let qemu = try FakeQEMU { qemu in qemu.send("\u{1}garbage\n") }
        let client = QMPClient(fd: qemu.clientFd)
        let error = Self.failure { () throws(MSBError) in try client.execute("query-status", deadline: Self.deadline()) }
        #expect(error?.message == "QEMU sent a malformed control message")
        qemu.finish()
    }

    @Test func aSilentQEMUTimesOutAtTheDeadline() throws {
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            // Never answers; returns once the client's end is closed.
            qemu.readCommand()
        }
        let client = QMPClient(fd: qemu.clientFd)
        let started = MonotonicClock.now()
        let error = Self.failure { () throws(MSBError) in try client.execute("stop", deadline: started + 0.3) }
        let waited = MonotonicClock.now() - started
        #expect(error?.code == .timeout)
        #expect(error?.message == "QEMU did not answer on its control channel in time")
        #expect(waited >= 0.29 && waited < 2, "waited \(waited)s")
        qemu.finish()
    }

    @Test func anEventFloodCannotHoldExecutePastItsDeadline() throws {
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            let event = Array((#"{"event": "RTC_CHANGE", "data": {"offset": 1}}"# + "\n").utf8)
            let burst = Array([[UInt8]](repeating: event, count: 100).joined())
            // Until the client's end is closed (then every send fails).
            while qemu.sendOnce(burst) {}
        }
        let client = QMPClient(fd: qemu.clientFd)
        let started = MonotonicClock.now()
        let error = Self.failure { () throws(MSBError) in try client.execute("stop", deadline: started + 0.3) }
        let waited = MonotonicClock.now() - started
        #expect(error?.code == .timeout)
        #expect(waited < 3, "waited \(waited)s")
        qemu.finish()
    }

    @Test func aSilentGreetingTimesOutToo() throws {
        let qemu = try FakeQEMU { qemu in qemu.readCommand() }
        let client = QMPClient(fd: qemu.clientFd)
        let started = MonotonicClock.now()
        let error = Self.failure { () throws(MSBError) in try client.execute("stop", deadline: started + 0.3) }
        #expect(error?.code == .timeout)
        #expect(MonotonicClock.now() - started < 2)
        qemu.finish()
    }

    @Test func aClosedChannelIsReported() throws {
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            qemu.closeEarly()
        }
        let client = QMPClient(fd: qemu.clientFd)
        let error = Self.failure { () throws(MSBError) in try client.execute("cont", deadline: Self.deadline()) }
        #expect(error?.code == .vmmFailure)
        #expect(error?.message == "QEMU closed its control channel")
        qemu.finish()
    }

    @Test func aPassedDescriptorArrivesWithItsCommand() throws {
        let path = NSTemporaryDirectory() + "qmp-fd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let file = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        #expect(file >= 0)
        defer {
            close(file)
            unlink(path)
        }
        let qemu = try FakeQEMU { qemu in
            qemu.negotiate()
            qemu.readCommand()
            qemu.send(#"{"return": {}}"# + "\n")
        }
        let client = QMPClient(fd: qemu.clientFd)
        try client.execute("getfd", arguments: ["fdname": "state"], passing: file, deadline: Self.deadline())
        qemu.finish()

        #expect(qemu.received.last?["execute"] as? String == "getfd")
        #expect((qemu.received.last?["arguments"] as? [String: Any])?["fdname"] as? String == "state")
        #expect(qemu.receivedDescriptors.count == 1)
        var sent = stat()
        var arrived = stat()
        #expect(fstat(file, &sent) == 0)
        #expect(fstat(qemu.receivedDescriptors.first ?? -1, &arrived) == 0)
        #expect(arrived.st_ino == sent.st_ino && arrived.st_dev == sent.st_dev)
        for fd in qemu.receivedDescriptors { close(fd) }
    }
}
