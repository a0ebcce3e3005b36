import Foundation
import MSBClient
import MSBCore
import MSBHTTP
import NIOCore

/// The server's open connections and attach sessions, each kind capped. At the connection
/// cap a new connection closes the one that has waited longest without a request running
/// (an idle keep-alive, or a client trickling a request), so idle connections cannot lock
/// real clients out; only when every connection runs a request is the new one refused.
package final class ConnectionTracker: @unchecked Sendable {
    private struct Entry {
        let channel: any Channel
        var busy = false
        var idleSince: NIODeadline
    }

    package let maxConnections: Int
    package let maxAttachSessions: Int
    private let lock = NSLock()
    private var entries: [ObjectIdentifier: Entry] = [:]
    private var attachSessions = 0
    /// Connections closed to make room, and refused: for the log and the tests.
    private(set) var evicted = 0
    private(set) var refused = 0

    package init(maxConnections: Int, maxAttachSessions: Int) {
        self.maxConnections = max(1, maxConnections)
        self.maxAttachSessions = max(0, maxAttachSessions)
    }

    package var connections: Int { lock.withLock { entries.count } }
    package var attachCount: Int { lock.withLock { attachSessions } }

    /// Takes in a new connection; false when it must be refused. Closes the longest-idle
    /// one when at the cap.
    package func admit(_ channel: any Channel, now: NIODeadline = .now()) -> Bool {
        let victim: (any Channel)? = lock.withLock {
            var victim: (any Channel)?
            if entries.count >= maxConnections {
                guard let oldest = entries.filter({ !$0.value.busy }).min(by: { $0.value.idleSince < $1.value.idleSince }) else {
                    refused += 1
                    return nil
                }
                entries[oldest.key] = nil
                evicted += 1
                victim = oldest.value.channel
            }
            entries[ObjectIdentifier(channel)] = Entry(channel: channel, idleSince: now)
            return victim ?? channel
        }
        guard let victim else { return false }
        if victim !== channel { victim.close(promise: nil) }
        return true
    }

    package func remove(_ channel: any Channel) {
        lock.withLock { entries[ObjectIdentifier(channel)] = nil }
    }

    /// A request runs on the connection (not to be closed for room), or has been answered.
    package func setBusy(_ channel: any Channel, _ busy: Bool, now: NIODeadline = .now()) {
        lock.withLock {
            entries[ObjectIdentifier(channel)]?.busy = busy
            entries[ObjectIdentifier(channel)]?.idleSince = now
        }
    }

    /// Holds an attach session slot; false at the cap.
    package func reserveAttach() -> Bool {
        lock.withLock {
            guard attachSessions < maxAttachSessions else { return false }
            attachSessions += 1
            return true
        }
    }

    package func releaseAttach() { lock.withLock { attachSessions -= 1 } }

    static func tooManyAttachSessions(_ limit: Int) -> MSBError {
        MSBError(.rateLimited, "the server already has \(limit) attach sessions (exec, shell, repl, cp) open, its limit",
                 hint: "retry when one has ended (the server's operator sets --max-attach-sessions)")
    }
}

/// Shared by one connection's deadline handler and HTTP handler (same event loop).
final class RequestClock {
    /// A request is being answered: the connection is not cut for its deadline.
    var busy = false
    var deadline: Scheduled<Void>?

    /// The request's last byte arrived: no deadline until the next one starts.
    func requestComplete() {
        deadline?.cancel()
        deadline = nil
    }
}

/// Gives each request a total deadline from its first byte to its last (head and body):
/// the idle timer alone is reset by every byte, so a client sending one byte now and then
/// would hold the connection forever. Sits before TLS and the HTTP decoder and sees raw
/// bytes, so the first request's deadline covers the TLS handshake as well.
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let clock: RequestClock
    private let seconds: Double

    init(clock: RequestClock, seconds: Double) {
        self.clock = clock
        self.seconds = seconds
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if clock.deadline == nil {
            let channel = context.channel
            let bound = NIOLoopBound(clock, eventLoop: context.eventLoop)
            clock.deadline = context.eventLoop.scheduleTask(in: HTTPTransport.timeAmount(seconds: seconds)) {
                let clock = bound.value
                clock.deadline = nil
                // Bytes that arrive while a request runs are the next (pipelined) request,
                // which NIO holds until this one is answered: never cut a running request.
                if !clock.busy { channel.close(promise: nil) }
            }
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) { clock.requestComplete() }
}

/// On a TLS port, a first byte that does not start a TLS handshake is a plain HTTP client:
/// it gets a plain HTTP 400 that says to use https (instead of a dropped connection).
final class PlainHTTPRefuser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static let tlsHandshakeRecord: UInt8 = 0x16

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        if first == Self.tlsHandshakeRecord {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
            return
        }
        let error = MSBError(.invalidArgument, "this msb server speaks HTTPS only",
                             hint: "use an https:// URL (with --cacert FILE if its certificate is not signed by a public CA)")
        let body = RemoteWire.encoded(RemoteWire.errorResponse(id: .null, error, rpcCode: RemoteWire.ErrorCode.invalidRequest)) + [10]
        let head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: Array(head.utf8) + body)))
            .whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Closes an attach stream once `IdleStateHandler` says nothing moved either way for too long.
final class IdleCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
