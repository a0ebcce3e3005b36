import MSBCore
import MSBOS
import MSBProtocol

extension SupervisorConnection {
    /// One Files API request to the guest agent and its answer. The guest's answer must come
    /// within `timeoutSeconds` (one chunk, one directory page: quick unless the guest is
    /// wedged). Requests on one connection take ids in turn; a stray answer is skipped.
    package func fileExchange(_ request: FileRequest, id: UInt32, timeoutSeconds: Double = 30) throws(MSBError) -> FileReply {
        lostMessage = "lost the connection to the sandbox during a file operation"
        send(.fileRequest(request), id: id)
        let deadline = MonotonicClock.now() + timeoutSeconds
        while true {
            switch try next(until: deadline) {
            case .message(let envelope) where envelope.id == id:
                switch envelope.message {
                case .fileReply(let reply): return reply
                case .error(let text): throw MSBError(.agentFailure, "the sandbox refused the request: \(PrintableText.escaped(text, maxScalars: 300))")
                case .execFailed(let failure): throw MSBError(.agentFailure, PrintableText.escaped(failure.message, maxScalars: 300))
                default: throw MSBError(.agentFailure, "the sandbox answered a file operation with something else")
                }
            case .message, .readable: continue
            case .deadlinePassed:
                throw MSBError(.timeout, "the sandbox did not answer a file operation within \(secondsText(timeoutSeconds))s",
                               hint: "the guest may be overloaded or not answering; run 'msb ls' to check the sandbox")
            }
        }
    }

    /// A `GuestFileClient` over this connection.
    package func guestFiles(sandbox: String) -> GuestFileClient {
        var nextId: UInt32 = 1
        return GuestFileClient(sandbox: sandbox) { [self] (request) throws(MSBError) -> FileReply in
            defer { nextId = nextId == UInt32.max - 1 ? 1 : nextId + 1 }
            return try fileExchange(request, id: nextId)
        }
    }
}
