import Foundation
import MSBClient
import MSBCore

extension RPCDispatcher {
    /// `sandbox.logs`: the guest's own output and msb's lines, no host path in either.
    func logs(_ call: RPCCall, _ p: RPC.Logs.Params) throws(MSBError) -> RPC.Logs.Result {
        let namespace = try call.namespace(p.namespace)
        let name = try RPCParams.sandbox(p.sandbox)
        let maxBytes = try RPCParams.wholeNumber(p.max_bytes, "max_bytes", in: 0...(1 << 53)).map { min($0, RPC.Logs.maxBytes) }
            ?? RPC.Logs.maxBytes
        let log = try host.sandboxes(namespace).logs(name, maxBytes: maxBytes)
        return .init(content: Data(log.bytes).base64EncodedString(), truncated: log.truncated)
    }
}
