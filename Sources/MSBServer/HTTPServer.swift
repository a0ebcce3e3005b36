import Foundation
import MSBClient
import MSBCore
import MSBHTTP
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

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
    /// Open connections and attach sessions, each capped.
    package let tracker: ConnectionTracker

    package init(dispatcher: RPCDispatcher) {
        self.dispatcher = dispatcher
        let limits = dispatcher.configuration.limits
        tracker = ConnectionTracker(maxConnections: limits.maxConnections, maxAttachSessions: limits.maxAttachSessions)
        pool.start()
    }

    /// The TLS context of `--tls-cert`/`--tls-key`; the operator's files, so their paths
    /// may appear in the error.
    static func tlsContext(_ files: ServerConfiguration.TLSFiles) throws(MSBError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath) } catch {
            throw MSBError(.invalidArgument, "cannot read the TLS certificate \(files.certificatePath): \(error)",
                           hint: "--tls-cert takes a PEM file: the server's certificate, then any intermediates")
        }
        guard !chain.isEmpty else { throw MSBError(.invalidArgument, "no certificate in \(files.certificatePath)") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: files.keyPath, format: .pem) } catch {
            throw MSBError(.invalidArgument, "cannot read the TLS private key \(files.keyPath): \(error)",
                           hint: "--tls-key takes the certificate's private key as an unencrypted PEM file")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw MSBError(.invalidArgument, "the TLS certificate and key cannot be used together: \(error)")
        }
    }

    /// Binds and starts serving; returns the port (useful with port 0).
    package func start() throws(MSBError) -> Int {
        let configuration = dispatcher.configuration
        try configuration.checkTransport()
        let tls = try configuration.tls.map { (files) throws(MSBError) in try Self.tlsContext(files) }
        let limits = limits
        let tracker = tracker
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let admitted = tracker.admit(channel)
                    channel.closeFuture.whenComplete { _ in tracker.remove(channel) }
                    let attach = AttachUpgrader(server: self)
                    let clock = RequestClock()
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(PlainHTTPRefuser()) }
                    // Before TLS: a handshake sent byte by byte counts against the deadline too.
                    try sync.addHandler(RequestDeadlineHandler(clock: clock, seconds: limits.requestDeadlineSeconds), name: "msb.deadline")
                    if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls)) }
                    try sync.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [attach], completionHandler: { context in
                            // The spliced stream is no HTTP connection any more: it counts as an
                            // attach session, with its own idle timeout (traffic either way).
                            tracker.remove(channel)
                            context.pipeline.removeHandler(name: "msb.deadline", promise: nil)
                            context.pipeline.removeHandler(name: "msb.idle", promise: nil)
                            context.pipeline.removeHandler(name: "msb.http", promise: nil)
                            let idle = IdleStateHandler(allTimeout: HTTPTransport.timeAmount(seconds: limits.attachIdleTimeoutSeconds))
                            try? context.pipeline.syncOperations.addHandlers([idle, IdleCloser()], position: .first)
                        }),
                        withErrorHandling: true)
                    try sync.addHandler(IdleStateHandler(readTimeout: HTTPTransport.timeAmount(seconds: limits.idleTimeoutSeconds)), name: "msb.idle")
                    try sync.addHandler(HTTPHandler(server: self, attach: attach, clock: clock, admitted: admitted), name: "msb.http")
                }
            }
        do {
            let channel = try bootstrap.bind(host: configuration.host, port: configuration.port).wait()
            lock.withLock { serverChannel = channel }
            return channel.localAddress?.port ?? configuration.port
        } catch let error as MSBError {
            throw error
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
}
