import Foundation
import MSBCore

extension RPC {
    /// msb's extension: the tail of a sandbox's start command log (`msb logs`), base64, at
    /// most `maxBytes` per call (the log itself keeps at most 8 MiB).
    package enum Logs: RPCMethodType {
        package static let name = "sandbox.logs"
        /// The most log bytes one answer carries.
        package static let maxBytes = 1 << 20

        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            /// The last this many bytes; absent or more than `maxBytes`: `maxBytes`.
            package var max_bytes: Double?
            package init(sandbox: String, namespace: String?, max_bytes: Double?) {
                self.sandbox = sandbox
                self.namespace = namespace
                self.max_bytes = max_bytes
            }
        }

        package struct Result: Codable, Sendable {
            /// The bytes, base64.
            package var content: String
            /// Older bytes exist that were left out.
            package var truncated: Bool
            package init(content: String, truncated: Bool) {
                self.content = content
                self.truncated = truncated
            }
        }
    }
}
