import Foundation
import MSBClient
import MSBHTTP
import MSBCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// `GET /api/v1/attach?namespace=NS&sandbox=NAME&purpose=exec|repl` with
/// `Upgrade: msb-attach`: after checking the key and the namespace, the server connects to
/// the sandbox's supervisor and splices the two connections, so a remote exec or REPL speaks
/// the same framed protocol a local one speaks over the Unix socket. A refused attach is
/// answered as an ordinary HTTP error (401, 403, 404, 409) by `HTTPHandler`.
final class AttachUpgrader: HTTPServerProtocolUpgrader {
    struct Refused: Error {}

    let supportedProtocol = RemoteWire.attachProtocol
    let requiredUpgradeHeaders: [String] = []
    private let server: HTTPServer
    /// Why the last attach was refused; read by `HTTPHandler` on the same event loop.
    private(set) var refusal: RPCReply?
    /// The supervisor connection between the check and the splice.
    private var controlFd: Int32 = -1

    init(server: HTTPServer) { self.server = server }

    deinit { if controlFd >= 0 { close(controlFd) } }

    func buildUpgradeResponse(channel: Channel, upgradeRequest: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        let uri = upgradeRequest.uri
        let authorization = upgradeRequest.headers.first(name: "authorization")
        let dispatcher = server.dispatcher
        let tracker = server.tracker
        guard tracker.reserveAttach() else {
            refusal = dispatcher.refusal(ConnectionTracker.tooManyAttachSessions(tracker.maxAttachSessions))
            return channel.eventLoop.makeFailedFuture(Refused())
        }
        return server.run(on: channel.eventLoop) { Self.connect(uri: uri, authorization: authorization, dispatcher: dispatcher) }
            .assumeIsolated()
            .flatMapThrowing { result -> HTTPHeaders in
                switch result {
                case .connected(let fd):
                    self.controlFd = fd
                    // The session's slot is held until its connection closes.
                    channel.closeFuture.whenComplete { _ in tracker.releaseAttach() }
                    return initialResponseHeaders
                case .refused(let reply):
                    tracker.releaseAttach()
                    self.refusal = reply
                    throw Refused()
                }
            }
            .nonisolated()
    }

    enum Outcome: Sendable {
        case connected(Int32)
        case refused(RPCReply)
    }

    /// Checks the request and connects to the supervisor; runs on a worker thread.
    private static func connect(uri: String, authorization: String?, dispatcher: RPCDispatcher) -> Outcome {
        guard let components = URLComponents(string: uri), HTTPHandler.routePath(components.path) == RemoteWire.attachPath else {
            return .refused(dispatcher.refusal(MSBError(.notFound, "no such endpoint: \(LogText.field(uri))")))
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let claims: APIKeyClaims
        do {
            claims = try dispatcher.authenticate(authorization)
        } catch {
            return .refused(dispatcher.refusal(error, status: 401))
        }
        let params = RPCParams(raw: query)
        let started = Date()
        do throws(MSBError) {
            let call = RPCCall(claims: claims, params: params)
            let request = try params.decode(RPC.SandboxParams.self)
            let namespace = try call.namespace(request.namespace)
            let name = try RPCParams.sandbox(request.sandbox)
            let purpose = SupervisorStreamPurpose(rawValue: query["purpose"] ?? "exec") ?? .exec
            let fd = try dispatcher.host.backend(namespace).openSupervisorStream(name, purpose: purpose)
            dispatcher.logCall("attach", params, claims: claims, started: started, error: nil)
            return .connected(fd)
        } catch {
            dispatcher.logCall("attach", params, claims: claims, started: started, error: error)
            return .refused(dispatcher.refusal(error))
        }
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let fd = controlFd
        controlFd = -1
        let (client, supervisor) = GlueHandler.matchedPair()
        let bound = NIOLoopBound(supervisor, eventLoop: context.eventLoop)
        do {
            try context.pipeline.syncOperations.addHandler(client)
        } catch {
            close(fd)
            return context.eventLoop.makeFailedFuture(error)
        }
        return ClientBootstrap(group: context.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
            .withConnectedSocket(fd)
            .map { _ in }
    }
}
