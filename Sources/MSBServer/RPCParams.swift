import Foundation
import MSBClient
import MSBCore
import MSBOS

/// A request's `params`, decoded into the method's typed `Params`; every refusal names the
/// parameter and what it must be, and becomes JSON-RPC error -32602.
struct RPCParams {
    let raw: [String: Any]

    static func invalid(_ key: String, _ what: String) -> MSBError {
        MSBError(.invalidArgument, "invalid params: '\(key)' must be \(what)")
    }

    func decode<T: Decodable>(_ type: T.Type) throws(MSBError) -> T {
        do {
            let data = try JSONSerialization.data(withJSONObject: raw)
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw Self.explain(error)
        } catch {
            throw MSBError(.invalidArgument, "invalid params: \(error)")
        }
    }

    /// A decoding failure in the words of the old hand-written checks.
    private static func explain(_ error: DecodingError) -> MSBError {
        func name(_ path: [any CodingKey]) -> String {
            path.last { $0.intValue == nil }?.stringValue ?? "params"
        }
        switch error {
        case .keyNotFound(let key, _):
            return MSBError(.invalidArgument, "invalid params: '\(key.stringValue)' is required")
        case .valueNotFound(_, let context):
            return MSBError(.invalidArgument, "invalid params: '\(name(context.codingPath))' is required")
        case .typeMismatch(let type, let context):
            let key = name(context.codingPath)
            // An element of a list that is not a string: the list is what was wrong.
            if context.codingPath.last?.intValue != nil || type == [String].self || type == [Any].self {
                return invalid(key, "a list of strings")
            }
            switch type {
            case is String.Type: return invalid(key, "a string")
            case is Bool.Type: return invalid(key, "true or false")
            case is Double.Type, is Int.Type, is UInt64.Type: return invalid(key, "a number")
            default: return invalid(key, "an object")
            }
        case .dataCorrupted(let context):
            return invalid(name(context.codingPath), "valid")
        @unknown default:
            return MSBError(.invalidArgument, "invalid params")
        }
    }

    /// A whole number in `range` (SDKs send `cpus` as an int, some as 1.0).
    static func wholeNumber(_ value: Double?, _ key: String, in range: ClosedRange<Int>) throws(MSBError) -> Int? {
        guard let value else { return nil }
        guard value.isFinite, value.rounded() == value, value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            throw invalid(key, "a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return Int(exactly: value)  // whole and within `range`, checked above
    }

    /// A `timeout` this large can only be nanoseconds (in seconds it would be over 31 years):
    /// the Go SDK sends its HTTP client's timeout, a `time.Duration`, as it is.
    static let nanosecondTimeoutThreshold = 1e9

    /// `timeout` in seconds; the default when absent. 10^9 or more is read as nanoseconds,
    /// and anything over the server's limit is clamped to the limit: an SDK cannot know the
    /// limit, and the server would end the command there anyway.
    static func timeoutSeconds(_ value: Double?, limits: ServerLimits) throws(MSBError) -> Double {
        guard let value else { return limits.defaultExecTimeoutSeconds }
        guard value.isFinite, value > 0 else { throw invalid("timeout", "a positive number of seconds") }
        let seconds = value >= nanosecondTimeoutThreshold ? value / 1e9 : value
        return min(seconds, limits.maxExecTimeoutSeconds)
    }

    /// `seconds` (from `timeoutSeconds`) as the guest's deadline: rounded up to a whole
    /// millisecond and never 0, which the guest reads as "no timeout".
    static func timeoutMilliseconds(_ seconds: Double) -> UInt64 {
        max(1, UInt64(exactly: (seconds * 1000).rounded(.up)) ?? 1)
    }

    /// `sandbox.wait`'s `timeout` in seconds, cut to the server's wait limit (also when absent).
    static func waitSeconds(_ seconds: Double?, limits: ServerLimits) throws(MSBError) -> Double {
        guard let seconds else { return limits.maxWaitSeconds }
        guard seconds.isFinite, seconds >= 0 else { throw invalid("timeout", "a number of seconds, 0 or more") }
        return min(seconds, limits.maxWaitSeconds)
    }

    /// A sandbox name, validated.
    static func sandbox(_ name: String) throws(MSBError) -> String {
        try InputParsing.validateName(name)
        return name
    }

    /// A volume name, validated (it names a directory on the server).
    static func volume(_ name: String) throws(MSBError) -> String {
        try StateStore.validateVolumeName(name)
        return name
    }

    /// A snapshot name, validated (it names a directory on the server).
    static func snapshot(_ name: String) throws(MSBError) -> String {
        try InputParsing.validateSnapshotName(name)
        return name
    }
}
