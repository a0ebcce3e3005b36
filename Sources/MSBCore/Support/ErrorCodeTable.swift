/// The one table of what each error code becomes at each edge: the JSON-RPC error code the
/// server answers with (so a remote error prints exactly as a local one), the HTTP status of
/// an RPC answer carrying it, the HTTP status of a plain HTTP answer (an attach refused),
/// and the CLI's exit code. Documented in the man page and docs/REMOTE.md.
extension MSBError.Code {
    package struct Edges: Sendable, Equatable {
        package var rpcCode: Int
        /// JSON-RPC errors ride on 200, except a key used outside its namespace (403) and
        /// "too many at once" (429).
        package var rpcHTTPStatus: Int
        package var httpStatus: Int
        package var exitCode: Int32
    }

    package var edges: Edges { Self.table[self] ?? Self.failure }

    /// Server-defined JSON-RPC codes are -32000…-32099; -32000 is a failure of no finer kind.
    private static let failure = Edges(rpcCode: -32000, rpcHTTPStatus: 200, httpStatus: 500, exitCode: 1)

    private static let table: [MSBError.Code: Edges] = [
        .invalidArgument: Edges(rpcCode: -32602, rpcHTTPStatus: 200, httpStatus: 400, exitCode: 2),
        .notFound: Edges(rpcCode: -32001, rpcHTTPStatus: 200, httpStatus: 404, exitCode: 1),
        .alreadyExists: Edges(rpcCode: -32002, rpcHTTPStatus: 200, httpStatus: 500, exitCode: 1),
        .invalidState: Edges(rpcCode: -32003, rpcHTTPStatus: 200, httpStatus: 409, exitCode: 1),
        .accessDenied: Edges(rpcCode: -32004, rpcHTTPStatus: 403, httpStatus: 403, exitCode: 1),
        .timeout: Edges(rpcCode: -32005, rpcHTTPStatus: 200, httpStatus: 500, exitCode: 1),
        .unsupported: Edges(rpcCode: -32006, rpcHTTPStatus: 200, httpStatus: 500, exitCode: 1),
        .limitExceeded: Edges(rpcCode: -32007, rpcHTTPStatus: 200, httpStatus: 500, exitCode: 1),
        // Retry later: HTTP 429 everywhere, and its own exit code (EX_TEMPFAIL) so scripts can retry.
        .rateLimited: Edges(rpcCode: -32008, rpcHTTPStatus: 429, httpStatus: 429, exitCode: 75),
        .internalError: Edges(rpcCode: -32603, rpcHTTPStatus: 200, httpStatus: 500, exitCode: 1),
        // The Files API (sandbox.fs.*): what the guest's file system said.
        .isADirectory: Edges(rpcCode: -32009, rpcHTTPStatus: 200, httpStatus: 409, exitCode: 1),
        .notADirectory: Edges(rpcCode: -32010, rpcHTTPStatus: 200, httpStatus: 409, exitCode: 1),
        .permissionDenied: Edges(rpcCode: -32011, rpcHTTPStatus: 200, httpStatus: 403, exitCode: 1),
        .tooLarge: Edges(rpcCode: -32012, rpcHTTPStatus: 200, httpStatus: 413, exitCode: 1),
        // Being prepared (an image built on first use): retry later, like rateLimited's exit
        // code, but on HTTP 200 so the SDKs show the message (they print a non-200 body raw).
        .notReady: Edges(rpcCode: -32013, rpcHTTPStatus: 200, httpStatus: 503, exitCode: 75),
    ]
}
