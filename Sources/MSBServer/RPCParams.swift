import Foundation
import MSBClient
import MSBCore

/// Typed access to a request's `params`; every refusal names the parameter and what it
/// must be, and becomes JSON-RPC error -32602.
struct RPCParams {
    let raw: [String: Any]

    private func invalid(_ key: String, _ what: String) -> MSBError {
        MSBError(.invalidArgument, "invalid params: '\(key)' must be \(what)")
    }

    private func value(_ key: String) -> Any? {
        guard let value = raw[key], !(value is NSNull) else { return nil }
        return value
    }

    func string(_ key: String) throws(MSBError) -> String? {
        guard let value = value(key) else { return nil }
        guard let text = value as? String else { throw invalid(key, "a string") }
        return text
    }

    func requiredString(_ key: String) throws(MSBError) -> String {
        guard let text = try string(key) else { throw MSBError(.invalidArgument, "invalid params: '\(key)' is required") }
        return text
    }

    /// JSON booleans are NSNumbers too: JSONSerialization gives them the `char` type, numbers never.
    static func isBool(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    func bool(_ key: String) throws(MSBError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let number = value as? NSNumber, Self.isBool(number) else { throw invalid(key, "true or false") }
        return number.boolValue
    }

    func number(_ key: String) throws(MSBError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value as? NSNumber, !Self.isBool(number), number.doubleValue.isFinite else { throw invalid(key, "a number") }
        return number.doubleValue
    }

    /// A whole number (SDKs send `cpus` as an int, some as 1.0).
    func integer(_ key: String, in range: ClosedRange<Int>) throws(MSBError) -> Int? {
        guard let number = try number(key) else { return nil }
        guard number.rounded() == number, number >= Double(range.lowerBound), number <= Double(range.upperBound) else {
            throw invalid(key, "a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return Int(number)
    }

    func strings(_ key: String) throws(MSBError) -> [String]? {
        guard let value = value(key) else { return nil }
        guard let items = value as? [Any], let strings = items as? [String], strings.count == items.count else {
            throw invalid(key, "a list of strings")
        }
        return strings
    }

    func object(_ key: String) throws(MSBError) -> RPCParams? {
        guard let value = value(key) else { return nil }
        guard let object = value as? [String: Any] else { throw invalid(key, "an object") }
        return RPCParams(raw: object)
    }

    /// `timeout` in seconds, bounded by the server's limit; the default when absent.
    func timeoutSeconds(_ key: String = "timeout", limits: ServerLimits) throws(MSBError) -> Double {
        guard let seconds = try number(key) else { return limits.defaultExecTimeoutSeconds }
        guard seconds > 0 else { throw invalid(key, "a positive number of seconds") }
        guard seconds <= limits.maxExecTimeoutSeconds else {
            throw MSBError(.invalidArgument, "invalid params: 'timeout' \(seconds)s is over this server's limit of \(Int(limits.maxExecTimeoutSeconds))s")
        }
        return seconds
    }

    /// The sandbox name, validated.
    func sandbox() throws(MSBError) -> String {
        let name = try requiredString("sandbox")
        try InputParsing.validateName(name)
        return name
    }
}
