import Foundation
import MSBClient
import MSBCore
import NIOCore
import NIOHTTP1

/// One HTTP/1.1 connection's requests: routes them, caps bodies, runs JSON-RPC calls on
/// the server's worker threads (they block on VMs) and writes the answers in order.
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: HTTPServer
    private let attach: AttachUpgrader
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var bodyBytes = 0
    private let clock: RequestClock
    /// false: the server was at its connection cap with every connection busy; each request
    /// gets 503 and the connection is closed soon.
    private let admitted: Bool
    private var busy: Bool {
        get { clock.busy }
        set { clock.busy = newValue }
    }

    init(server: HTTPServer, attach: AttachUpgrader, clock: RequestClock, admitted: Bool) {
        self.server = server
        self.attach = attach
        self.clock = clock
        self.admitted = admitted
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A refused connection gets 2 s to send a request and read its 503.
        if !admitted {
            let channel = context.channel
            context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            body.clear()
            bodyBytes = 0
        case .body(var chunk):
            bodyBytes += chunk.readableBytes
            // Over the limit: keep reading (so the client sees the 413) but keep nothing.
            if bodyBytes <= server.limits.maxBodyBytes { body.writeBuffer(&chunk) }
            if bodyBytes > server.limits.maxBodyBytes * 4 { context.close(promise: nil) }
        case .end:
            clock.requestComplete()
            guard let request = head else { return }
            head = nil
            guard admitted else {
                respond(context: context, request: request, close: true, HTTPServer.errorReply(
                    503, RemoteWire.ErrorCode.internalError, "the server has too many connections, every one running a request",
                    kind: .rateLimited))
                return
            }
            route(context: context, request: request)
        }
    }

    /// The path a request target names, as it is routed: the query cut off, each run of '/'
    /// one '/', no trailing '/'. SDKs join `MSB_SERVER_URL` and `/api/v1/rpc` as text, so a
    /// URL that ends in '/' asks for `//api/v1/rpc`; some clients write `/api/v1/rpc/`.
    static func routePath(_ target: String) -> String {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return "/" + path.split(separator: "/").joined(separator: "/")
    }

    private func route(context: ChannelHandlerContext, request: HTTPRequestHead) {
        let path = Self.routePath(request.uri)
        switch (request.method, path) {
        case (.GET, RemoteWire.healthPath), (.HEAD, RemoteWire.healthPath):
            respond(context: context, request: request,
                    RPCReply(status: 200, body: RemoteWire.encoded(["status": "ok", "version": server.dispatcher.configuration.version]) + [10]))
        case (.POST, RemoteWire.rpcPath):
            guard bodyBytes <= server.limits.maxBodyBytes else {
                respond(context: context, request: request, close: true, HTTPServer.errorReply(
                    413, RemoteWire.ErrorCode.invalidRequest, "request body too large: \(bodyBytes) bytes, the limit is \(server.limits.maxBodyBytes)"))
                return
            }
            guard server.beginRequest() else {
                respond(context: context, request: request, close: true, Self.shuttingDown)
                return
            }
            let bytes = body.readBytes(length: body.readableBytes) ?? []
            let authorization = request.headers.first(name: "authorization")
            let dispatcher = server.dispatcher
            let server = server
            busy = true
            let channel = context.channel
            server.tracker.setBusy(channel, true)
            server.run(on: context.eventLoop) { dispatcher.handle(body: bytes, authorization: authorization) }
                .assumeIsolated()
                .whenComplete { result in
                    self.busy = false
                    server.tracker.setBusy(channel, false)
                    // In flight until the answer is written, so a shutdown waits for it.
                    let written: EventLoopFuture<Void>
                    switch result {
                    case .success(let reply): written = self.respond(context: context, request: request, reply)
                    case .failure: written = self.respond(context: context, request: request, close: true, Self.shuttingDown)
                    }
                    written.whenComplete { _ in server.endRequest() }
                }
        case (_, RemoteWire.rpcPath):
            respond(context: context, request: request, HTTPServer.errorReply(405, RemoteWire.ErrorCode.invalidRequest, "use POST for \(path)"))
        case (.GET, RemoteWire.attachPath):
            respond(context: context, request: request, attach.refusal ?? HTTPServer.errorReply(
                400, RemoteWire.ErrorCode.invalidRequest, "\(path) needs 'Connection: Upgrade' and 'Upgrade: \(RemoteWire.attachProtocol)'"))
        default:
            respond(context: context, request: request, HTTPServer.errorReply(404, RemoteWire.ErrorCode.methodNotFound, "no such endpoint: \(request.method) \(path)"))
        }
    }

    static let shuttingDown = HTTPServer.errorReply(503, RemoteWire.ErrorCode.internalError, "the server is shutting down",
                                                    kind: .invalidState)

    @discardableResult
    private func respond(context: ChannelHandlerContext, request: HTTPRequestHead, close: Bool = false,
                         _ reply: RPCReply) -> EventLoopFuture<Void> {
        let keepAlive = request.isKeepAlive && !close
        var headers = HTTPHeaders()
        if reply.status != 204 {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(reply.body.count))
        }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: reply.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if !reply.body.isEmpty && request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: reply.body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { written.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
        return written
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A connection that sent nothing for a while is closed (also one stuck mid-request,
        // so a client cannot hold it with a body it never finishes), but never while its
        // request is still running.
        if event is IdleStateHandler.IdleStateEvent {
            if !busy { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A refused attach falls back to this handler, which answers it with the refusal.
        if error is AttachUpgrader.Refused { return }
        context.close(promise: nil)
    }
}
