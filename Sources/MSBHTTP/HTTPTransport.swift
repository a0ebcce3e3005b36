import AsyncHTTPClient
import Glibc
import MSBOS
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// msb's one HTTP client, for registries and for `msb server`: AsyncHTTPClient over
/// SwiftNIO, TLS verified against the system's CA store, redirects followed, every call
/// bounded by a deadline and a body limit. Calls block their thread (the CLI and the
/// server's workers are synchronous); the I/O runs on NIO's shared event loops.
package enum HTTPTransport {
    package struct Response: Sendable {
        package var status: Int
        package var headers: HTTPHeaders
        package var body: [UInt8]

        package func header(_ name: String) -> String? { headers.first(name: name) }
    }

    /// Why a call failed, in words for an error message ("Connection refused").
    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var reason: String
        /// The server's TLS certificate was not trusted (a CA option may help).
        package var untrustedCertificate = false
        package var description: String { reason }

        package init(reason: String, untrustedCertificate: Bool = false) {
            self.reason = reason
            self.untrustedCertificate = untrustedCertificate
        }

        /// What a person should read for a transport error.
        package init(_ error: any Error, timeoutSeconds: Double) {
            let text = "\(error)"
            if text.contains("CERTIFICATE_VERIFY_FAILED") || error is NIOSSLExtraError {
                self.init(reason: "TLS: the server's certificate is not trusted (\(Self.certificateProblem(text)))", untrustedCertificate: true)
            } else {
                self.init(reason: HTTPTransport.describe(error, timeoutSeconds: timeoutSeconds))
            }
        }

        private static func certificateProblem(_ text: String) -> String {
            if text.contains("failedToValidateHostname") { return "it is not for this host name or address" }
            return "certificate verify failed"
        }
    }

    /// Which certificates TLS connections trust.
    package enum TLSTrust: Sendable, Hashable {
        /// The system's CA store.
        case system
        /// Only the CA certificates in this PEM file (`--cacert`, MSB_CACERT).
        case caFile(String)
        /// No verification: only for a liveness check of this host's own server, which
        /// sends no key and reads nothing but the status.
        case unverifiedLocalHealthCheck

        /// The client configuration, or nil for the default (system CAs).
        package func clientConfiguration() throws(Failure) -> TLSConfiguration? {
            switch self {
            case .system: return nil
            case .caFile(let path):
                var configuration = TLSConfiguration.makeClientConfiguration()
                do {
                    let certificates = try NIOSSLCertificate.fromPEMFile(path)
                    guard !certificates.isEmpty else { throw Failure(reason: "no certificate in it") }
                    configuration.trustRoots = .certificates(certificates)
                } catch {
                    throw Failure(reason: "cannot read CA certificates from \(path): \(error)")
                }
                return configuration
            case .unverifiedLocalHealthCheck:
                var configuration = TLSConfiguration.makeClientConfiguration()
                configuration.certificateVerification = .none
                return configuration
            }
        }
    }

    /// One client for the process (never shut down: it lives as long as the process). A
    /// failed connection fails the call at once: the pool would otherwise retry with
    /// backoff until the call's deadline, an hour for a long command.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    package static func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                             timeoutSeconds: Double = 60, maxBodyBytes: Int = 64 << 20, trust: TLSTrust = .system) throws(Failure) -> Response {
        let request: HTTPClient.Request
        let tls = try trust.clientConfiguration()
        do {
            request = try HTTPClient.Request(url: url, method: method, headers: HTTPHeaders(headers), body: body.map { .bytes($0) },
                                             tlsConfiguration: tls)
        } catch {
            throw Failure(reason: "invalid URL \(url)")
        }
        let accumulator = ResponseAccumulator(request: request, maxBodySize: maxBodyBytes)
        let deadline = NIODeadline.now() + timeAmount(seconds: timeoutSeconds)
        do {
            let response = try client.execute(request: request, delegate: accumulator, deadline: deadline).wait()
            return Response(status: Int(response.status.code), headers: response.headers,
                            body: response.body.map { Array($0.readableBytesView) } ?? [])
        } catch {
            throw Failure(error, timeoutSeconds: timeoutSeconds)
        }
    }

    /// A duration for NIO, saturating instead of trapping on a huge, infinite or NaN value.
    package static func timeAmount(seconds: Double) -> TimeAmount {
        .milliseconds(Int64(exactly: (min(max(seconds, 0), 1e12) * 1000).rounded(.up)) ?? Int64.max / 1_000_000)
    }

    /// What a person should read for a transport error.
    package static func describe(_ error: any Error, timeoutSeconds: Double) -> String {
        if let connection = error as? NIOConnectionError {
            if let failure = connection.connectionErrors.first { return describe(failure.error, timeoutSeconds: timeoutSeconds) }
            if let dns = connection.dnsAError ?? connection.dnsAAAAError { return "cannot resolve \(connection.host): \(dns)" }
            return "cannot connect to \(connection.host):\(connection.port)"
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        if let ssl = error as? NIOSSLError { return "TLS failed: \(ssl)" }
        if let client = error as? HTTPClientError {
            switch client {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "no answer within \(secondsText(timeoutSeconds))s"
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "the connection closed before a response"
            default: return "\(client)"
            }
        }
        if error is ResponseAccumulator.ResponseTooBigError { return "the response is too large" }
        return "\(error)"
    }
}
