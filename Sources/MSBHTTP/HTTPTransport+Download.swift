import AsyncHTTPClient
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

extension HTTPTransport {
    /// What a streamed GET returned: the status and headers, and for a status other than
    /// 2xx the first bytes of its body (for an error code), never more.
    package struct StreamedResponse: Sendable {
        package var status: Int
        package var headers: HTTPHeaders
        package var errorBody: [UInt8]

        package func header(_ name: String) -> String? { headers.first(name: name) }
    }

    /// GET whose 2xx body goes to `sink` piece by piece as it arrives (to a file, through a
    /// hash) instead of into memory; more than `maxBodyBytes` fails the call.
    package static func download(_ url: String, headers: [(String, String)] = [], timeoutSeconds: Double, maxBodyBytes: Int,
                                 sink: @escaping @Sendable (ByteBuffer) throws -> Void) throws(Failure) -> StreamedResponse {
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: .GET, headers: HTTPHeaders(headers))
        } catch {
            throw Failure(reason: "invalid URL")
        }
        let delegate = StreamingDelegate(maxBodyBytes: maxBodyBytes, sink: sink)
        let deadline = NIODeadline.now() + HTTPTransport.timeAmount(seconds: timeoutSeconds)
        do {
            return try client.execute(request: request, delegate: delegate, deadline: deadline).wait()
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(reason: describe(error, timeoutSeconds: timeoutSeconds))
        }
    }
}

/// Hands each body part of a 2xx response to the sink on the event loop; counts bytes
/// against the limit (the declared length is checked up front too).
final class StreamingDelegate: HTTPClientResponseDelegate, Sendable {
    typealias Response = HTTPTransport.StreamedResponse
    static let errorBodyBytes = 4096

    private let maxBodyBytes: Int
    private let sink: @Sendable (ByteBuffer) throws -> Void
    private let state = NIOLockedValueBox(HTTPTransport.StreamedResponse(status: 0, headers: [:], errorBody: []))
    private let received = NIOLockedValueBox(0)

    init(maxBodyBytes: Int, sink: @escaping @Sendable (ByteBuffer) throws -> Void) {
        self.maxBodyBytes = maxBodyBytes
        self.sink = sink
    }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let status = Int(clamping: head.status.code)
        state.withLockedValue { $0.status = status; $0.headers = head.headers }
        if (200..<300).contains(status),
           let declared = head.headers.first(name: "Content-Length").flatMap({ Int($0, radix: 10) }), declared > maxBodyBytes {
            return task.eventLoop.makeFailedFuture(HTTPTransport.Failure(reason: "the response is too large (\(declared) bytes, limit \(maxBodyBytes))"))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let total = received.withLockedValue { count in
            count = count.addingReportingOverflow(buffer.readableBytes).overflow ? Int.max : count + buffer.readableBytes
            return count
        }
        guard total <= maxBodyBytes else {
            return task.eventLoop.makeFailedFuture(HTTPTransport.Failure(reason: "the response is too large (over \(maxBodyBytes) bytes)"))
        }
        let status = state.withLockedValue { $0.status }
        guard (200..<300).contains(status) else {
            state.withLockedValue { response in
                let room = max(0, Self.errorBodyBytes - response.errorBody.count)
                response.errorBody += buffer.readableBytesView.prefix(room)
            }
            return task.eventLoop.makeSucceededVoidFuture()
        }
        do {
            try sink(buffer)
        } catch {
            return task.eventLoop.makeFailedFuture(error)
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        state.withLockedValue { $0 }
    }
}
