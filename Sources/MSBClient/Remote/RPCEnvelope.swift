import Foundation
import MSBCore

/// A JSON-RPC request id: a string, a number or null, echoed back exactly.
package enum RPCID: Codable, Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case number(Double)
    case null

    /// From a JSONSerialization value; nil if it is not a valid id (a bool, an object).
    package init?(json value: Any?) {
        switch value {
        case nil, is NSNull: self = .null
        case let text as String: self = .string(text)
        case let number as NSNumber where String(cString: number.objCType) != "c":
            let double = number.doubleValue
            self = double.rounded() == double && abs(double) < 9e15 ? .integer(number.int64Value) : .number(double)
        default: return nil
        }
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let text = try? c.decode(String.self) { self = .string(text) }
        else if let integer = try? c.decode(Int64.self) { self = .integer(integer) }
        else { self = .number(try c.decode(Double.self)) }
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let text): try c.encode(text)
        case .integer(let integer): try c.encode(integer)
        case .number(let double): try c.encode(double)
        case .null: try c.encodeNil()
        }
    }
}

/// `{"code","message","data":{"kind","hint"}}`: `data` rebuilds the MSBError on the client,
/// so a remote error prints exactly as the local one.
package struct RPCErrorObject: Codable, Sendable {
    package struct Detail: Codable, Sendable {
        package var kind: String
        package var hint: String?
    }
    package var code: Int
    package var message: String
    package var data: Detail?

    /// `rpcCode` overrides the table's code for envelope errors (parse, invalid request, unknown method).
    package init(_ error: MSBError, rpcCode: Int? = nil) {
        code = rpcCode ?? error.code.edges.rpcCode
        message = error.description
        data = Detail(kind: error.code.description, hint: error.hint)
    }

    package var error: MSBError {
        MSBError(data.flatMap { MSBError.Code(named: $0.kind) } ?? .internalError, message, hint: data?.hint)
    }
}

/// A response: `result` or `error`, for the id of the request.
package struct RPCResponse<Result: Codable & Sendable>: Codable, Sendable {
    package var jsonrpc = "2.0"
    package var id: RPCID
    package var result: Result?
    package var error: RPCErrorObject?

    package init(id: RPCID, result: Result) {
        self.id = id
        self.result = result
    }

    package init(id: RPCID, error: RPCErrorObject) {
        self.id = id
        self.error = error
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jsonrpc, forKey: .jsonrpc)
        try c.encode(id, forKey: .id)
        if let error { try c.encode(error, forKey: .error) } else { try c.encode(result, forKey: .result) }
    }
}

/// A request, as the remote backend sends it.
package struct RPCRequest<Params: Codable & Sendable>: Codable, Sendable {
    package var jsonrpc = "2.0"
    package var method: String
    package var params: Params
    package var id: RPCID
}

extension RemoteWire {
    /// msb's JSON: the encoder every wire answer and request is written with.
    package static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    package static func encoded<T: Encodable>(_ value: T) -> [UInt8] {
        guard let data = try? encoder.encode(value) else {
            return Array(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error: the answer could not be encoded"}}"#.utf8)
        }
        return Array(data)
    }

    /// The error envelope every refusal of the server is written as.
    package static func errorResponse(id: RPCID, _ error: MSBError, rpcCode: Int? = nil) -> RPCResponse<String> {
        RPCResponse(id: id, error: RPCErrorObject(error, rpcCode: rpcCode))
    }
}
