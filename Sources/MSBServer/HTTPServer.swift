import Foundation
import MSBClient
import MSBCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP side of `msb server`: SwiftNIO's HTTP/1.1 server on two event loops, with the
/// JSON-RPC calls (which block on microVMs for seconds) run on a pool of worker threads.
package final class HTTPServer: @unchecked Sendable {
    package let dispatcher: RPCDispatcher
    var limits: ServerLimits { dispatcher.configuration.limits }
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    /// Requests wait for a free worker beyond this many at once.
    private let pool = NIOThreadPool(numberOfThreads: 64)
    private let lock = NSLock()
    /// Requests from their dispatch until their answer is written.
    private var inFlight = 0
    /// Set when a shutdown begins: new requests on open connections get 503.
    private var draining = false
    private var serverChannel: Channel?

    package init(dispatcher: RPCDispatcher) {
        self.dispatcher = dispatcher
        pool.start()
    }

    /// Binds and starts serving; returns the port (useful with port 0).
    package func start() throws(MSBError) -> Int {
        let configuration = dispatcher.configuration
        let idleSeconds = limits.idleTimeoutSeconds
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let attach = AttachUpgrader(server: self)
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [attach], completionHandler: { context in
                            // The spliced stream needs neither the HTTP handler nor the idle timer
                            // (an interactive shell may sit idle for hours).
                            context.pipeline.removeHandler(name: "msb.idle", promise: nil)
                            context.pipeline.removeHandler(name: "msb.http", promise: nil)
                        }),
                        withErrorHandling: true)
                    try sync.addHandler(IdleStateHandler(readTimeout: .milliseconds(Int64(idleSeconds * 1000))), name: "msb.idle")
                    try sync.addHandler(HTTPHandler(server: self, attach: attach), name: "msb.http")
                }
            }
        do {
            let channel = try bootstrap.bind(host: configuration.host, port: configuration.port).wait()
            lock.withLock { serverChannel = channel }
            return channel.localAddress?.port ?? configuration.port
        } catch {
            let why = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
            throw MSBError(.invalidState, "cannot listen on \(configuration.host):\(configuration.port): \(why)",
                           hint: "is another server running? choose another --port")
        }
    }

    /// Runs `work` on a worker thread.
    func run<T: Sendable>(on eventLoop: EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T> {
        pool.runIfActive(eventLoop: eventLoop, work)
    }

    /// Counts a request as in flight; false once the server is shutting down.
    func beginRequest() -> Bool {
        lock.withLock {
            guard !draining else { return false }
            inFlight += 1
            return true
        }
    }

    func endRequest() { lock.withLock { inFlight -= 1 } }

    /// Stops accepting connections, lets requests in flight finish (up to `graceSeconds`),
    /// then closes everything. Returns how many requests were still running at the end.
    @discardableResult
    package func shutdown(graceSeconds: Double) -> Int {
        let channel = lock.withLock {
            draining = true
            return serverChannel
        }
        try? channel?.close().wait()
        let deadline = Date().addingTimeInterval(graceSeconds)
        while lock.withLock({ inFlight }) > 0 && Date() < deadline { usleep(50_000) }
        let left = lock.withLock { inFlight }
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
        return left
    }

    // MARK: Error replies

    static func errorReply(_ status: Int, _ rpcCode: Int, _ message: String, kind: MSBError.Code = .invalidArgument) -> RPCReply {
        RPCReply(status: status, body: RemoteWire.encoded(RemoteWire.errorResponse(id: .null, MSBError(kind, message), rpcCode: rpcCode)) + [10])
    }

    /// The HTTP status and body of a refused attach.
    static func reply(for error: MSBError, status explicit: Int? = nil) -> RPCReply {
        RPCReply(status: explicit ?? error.code.edges.httpStatus, body: RemoteWire.encoded(RemoteWire.errorResponse(id: .null, error)) + [10])
    }
}
