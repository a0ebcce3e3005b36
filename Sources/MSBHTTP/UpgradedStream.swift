import Glibc
import MSBOS
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The client side of an HTTP `Upgrade` (msb's attach streams): connects (with TLS for
/// https), sends the request, and on `101` splices the upgraded connection to one end of a
/// socketpair whose other end it returns. The caller then speaks its protocol over a plain
/// descriptor, exactly as over a local Unix socket.
package enum UpgradedStream {
    package enum Failure: Error, Sendable {
        /// No answer: the reason in words ("Connection refused").
        case unreachable(HTTPTransport.Failure)
        /// The server answered without upgrading; its status and (at most 1 MiB of) body.
        case refused(status: Int, body: [UInt8])
    }

    package static func open(host: String, port: Int, tls: Bool, trust: HTTPTransport.TLSTrust = .system, path: String, protocolName: String,
                             headers: [(String, String)], timeoutSeconds: Double = 30) throws(Failure) -> Int32 {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw .unreachable(HTTPTransport.Failure(reason: "cannot create a socket pair: \(String(cString: strerror(errno)))"))
        }
        let tlsContext: NIOSSLContext?
        do {
            tlsContext = tls ? try NIOSSLContext(configuration: trust.clientConfiguration() ?? .makeClientConfiguration()) : nil
        } catch let failure as HTTPTransport.Failure {
            close(pair[0]); close(pair[1])
            throw .unreachable(failure)
        } catch {
            close(pair[0]); close(pair[1])
            throw .unreachable(HTTPTransport.Failure(reason: "TLS set-up failed: \(error)"))
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let outcome = loop.makePromise(of: Void.self)
        let bridgeFd = pair[1]
        /// Set once NIO owns the bridge descriptor (it then closes it with its channel).
        let bridgeTaken = NIOLockedValueBox(false)
        let serverName = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tlsContext { try sync.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverName)) }
                    let refusals = RefusalCollector(outcome: outcome)
                    let upgrader = StreamUpgrader(supportedProtocol: protocolName, bridgeFd: bridgeFd, bridgeTaken: bridgeTaken,
                                                  refusals: NIOLoopBound(refusals, eventLoop: channel.eventLoop))
                    try sync.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes,
                                                   withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in outcome.succeed() }))
                    try sync.addHandler(refusals)
                }
            }
            .connect(host: host, port: port)
        connected.whenSuccess { channel in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
        connected.whenFailure { outcome.fail($0) }
        let timeout = loop.scheduleTask(in: HTTPTransport.timeAmount(seconds: timeoutSeconds)) {
            outcome.fail(HTTPTransport.Failure(reason: "no answer within \(secondsText(timeoutSeconds))s"))
        }
        do {
            try outcome.futureResult.wait()
            timeout.cancel()
            return pair[0]
        } catch {
            timeout.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
            close(pair[0])
            if !bridgeTaken.withLockedValue({ $0 }) { close(bridgeFd) }
            if let refused = error as? Refused { throw .refused(status: refused.status, body: refused.body) }
            throw .unreachable(HTTPTransport.Failure(error, timeoutSeconds: timeoutSeconds))
        }
    }

    struct Refused: Error {
        var status: Int
        var body: [UInt8]
    }
}

/// On `101`: drops the refusal collector, then glues the connection to the bridge socket.
private final class StreamUpgrader: NIOHTTPClientProtocolUpgrader, Sendable {
    let supportedProtocol: String
    let requiredUpgradeHeaders: [String] = []
    private let bridgeFd: Int32
    private let bridgeTaken: NIOLockedValueBox<Bool>
    private let refusals: NIOLoopBound<RefusalCollector>

    init(supportedProtocol: String, bridgeFd: Int32, bridgeTaken: NIOLockedValueBox<Bool>, refusals: NIOLoopBound<RefusalCollector>) {
        self.supportedProtocol = supportedProtocol
        self.bridgeFd = bridgeFd
        self.bridgeTaken = bridgeTaken
        self.refusals = refusals
    }

    func addCustom(upgradeRequestHeaders: inout HTTPHeaders) {}
    func shouldAllowUpgrade(upgradeResponse: HTTPResponseHead) -> Bool { true }

    func upgrade(context: ChannelHandlerContext, upgradeResponse: HTTPResponseHead) -> EventLoopFuture<Void> {
        let (server, bridge) = GlueHandler.matchedPair()
        let bound = NIOLoopBound(bridge, eventLoop: context.eventLoop)
        // From here on the connection carries the upgraded protocol, not HTTP responses.
        context.pipeline.syncOperations.removeHandler(refusals.value, promise: nil)
        do {
            try context.pipeline.syncOperations.addHandler(server)
        } catch {
            return context.eventLoop.makeFailedFuture(error)
        }
        bridgeTaken.withLockedValue { $0 = true }
        return ClientBootstrap(group: context.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
            .withConnectedSocket(bridgeFd)
            .map { _ in }
    }
}

/// A response that did not upgrade: collected and turned into the failure.
private final class RefusalCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let outcome: EventLoopPromise<Void>
    private var status = 0
    private var body: [UInt8] = []

    init(outcome: EventLoopPromise<Void>) { self.outcome = outcome }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(let buffer): if body.count < 1 << 20 { body += buffer.readableBytesView.prefix((1 << 20) - body.count) }
        case .end:
            outcome.fail(UpgradedStream.Refused(status: status, body: body))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        outcome.fail(HTTPTransport.Failure(reason: "the connection closed before a response"))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        outcome.fail(error)
        context.close(promise: nil)
    }
}
