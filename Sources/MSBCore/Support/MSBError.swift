/// The one error type that crosses layer boundaries: an opaque code, a message meant
/// for people, an optional hint (printed as `  → hint`) and the underlying cause.
/// Each layer wraps what it catches once, at its edge.
public struct MSBError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let rawValue: String
        public var description: String { rawValue }

        public static let invalidArgument = Code(rawValue: "invalidArgument")
        public static let notFound = Code(rawValue: "notFound")
        public static let alreadyExists = Code(rawValue: "alreadyExists")
        public static let invalidState = Code(rawValue: "invalidState")
        public static let unsupported = Code(rawValue: "unsupported")
        public static let timeout = Code(rawValue: "timeout")
        public static let vmmFailure = Code(rawValue: "vmmFailure")
        public static let agentFailure = Code(rawValue: "agentFailure")
        public static let stateStore = Code(rawValue: "stateStore")
        /// Credentials missing or refused.
        public static let accessDenied = Code(rawValue: "accessDenied")
        /// Content that does not match its digest.
        public static let integrity = Code(rawValue: "integrity")
        /// A server-side limit (running sandboxes, memory, cpus) would be exceeded.
        public static let limitExceeded = Code(rawValue: "limitExceeded")
        /// Too many at once (calls, pulls, connections, attach sessions): retry later.
        public static let rateLimited = Code(rawValue: "rateLimited")
        public static let internalError = Code(rawValue: "internalError")
        // The Files API's kinds beyond notFound and alreadyExists (a guest path).
        public static let isADirectory = Code(rawValue: "isADirectory")
        public static let notADirectory = Code(rawValue: "notADirectory")
        /// The guest refused the operation (its permissions, a read-only file system).
        public static let permissionDenied = Code(rawValue: "permissionDenied")
        /// More bytes than one call may carry.
        public static let tooLarge = Code(rawValue: "tooLarge")
        /// What was asked for is being prepared (an image built on first use): retry later.
        public static let notReady = Code(rawValue: "notReady")

        static let all: [Code] = [.invalidArgument, .notFound, .alreadyExists, .invalidState, .unsupported, .timeout,
                                  .vmmFailure, .agentFailure, .stateStore, .accessDenied, .integrity, .limitExceeded, .rateLimited,
                                  .internalError, .isADirectory, .notADirectory, .permissionDenied, .tooLarge, .notReady]

        private init(rawValue: String) { self.rawValue = rawValue }

        /// The code a remote error names; unknown names are not codes.
        package init?(named name: String) {
            guard let code = Code.all.first(where: { $0.rawValue == name }) else { return nil }
            self = code
        }
    }

    public let code: Code
    public let message: String
    public let hint: String?
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, hint: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.cause = cause
    }

    public var description: String {
        guard let cause else { return message }
        return "\(message): \(cause)"
    }

    /// Wraps any error once: an MSBError passes through unchanged.
    package static func wrap(_ error: any Error, _ code: Code, _ message: String) -> MSBError {
        if let error = error as? MSBError { return error }
        return MSBError(code, message, cause: SendableErrorDescription(String(describing: error)))
    }
}

/// Keeps the text of a non-Sendable cause.
package struct SendableErrorDescription: Error, CustomStringConvertible, Sendable {
    package let description: String
    package init(_ description: String) { self.description = description }
}

extension MSBError {
    package static func sandboxNotFound(_ name: String) -> MSBError {
        MSBError(.notFound, "sandbox not found: \(name)", hint: "run 'msb ls' to see sandboxes")
    }

    package static func snapshotNotFound(_ name: String) -> MSBError {
        MSBError(.notFound, "snapshot not found: \(name)", hint: "run 'msb snapshot ls' to see snapshots")
    }
}
