import Foundation
import MSBClient
import MSBCore
import MSBServer

/// `msb server keygen`, `keys ls` and `keys revoke ID`: API keys are issued with an id and
/// recorded (never the key itself) so that they can be listed and revoked; the server checks
/// the list on every request.
enum ServerKeys {
    static func keygen(_ arguments: ParsedArguments, paths: MSBPaths, _ context: CommandContext) throws(MSBError) -> Int32 {
        var namespace = "*"
        if let requested = arguments.value("namespace") {
            try InputParsing.validateNamespace(requested)
            namespace = requested
        }
        var lifetime: Double? = ServerCommand.defaultKeyLifetimeSeconds
        if let text = arguments.value("expire") {
            lifetime = text == "never" ? nil : Double(try InputParsing.parseDurationMilliseconds(text)) / 1000
        }
        let now = Date()
        let id = APIKeyAuthority.newKeyID()
        let authority = try APIKeyAuthority.load(serverDirectory: paths.serverDirectory)
        let expires = lifetime.map { now.addingTimeInterval($0.rounded(.up)) }
        // Recorded before it is shown: a key the server does not know is refused.
        try APIKeyRegistry(serverDirectory: paths.serverDirectory).add(APIKeyRecord(
            id: id, namespace: namespace, created_at: RemoteWire.iso8601(now), expires_at: expires.map(RemoteWire.iso8601)))
        let key = authority.issue(namespace: namespace, expiresIn: lifetime, now: now, id: id)
        let scope = namespace == "*" ? "all namespaces" : "namespace \(namespace)"
        let expiry = expires.map { "expires \(RemoteWire.iso8601($0))" } ?? "does not expire"
        CommandContext.writeError("msb: API key \(id) for \(scope), \(expiry); it is shown once: set it as MSB_API_KEY")
        context.write(key + "\n")
        return 0
    }

    static func run(_ words: [String], _ arguments: ParsedArguments, paths: MSBPaths, _ context: CommandContext) throws(MSBError) -> Int32 {
        let registry = APIKeyRegistry(serverDirectory: paths.serverDirectory)
        switch words.first {
        case "ls" where words.count == 1:
            let records = try registry.records()
            if try OutputFormatting.wantsJSON(arguments) {
                context.write(try OutputFormatting.json(records) + "\n")
                return 0
            }
            let now = Date()
            let rows = records.map { record in
                [record.id, record.namespace, record.created_at, expiry(record, now: now), record.revoked_at ?? "-"]
            }
            context.write(OutputFormatting.table(header: ["ID", "NAMESPACE", "CREATED", "EXPIRES", "REVOKED"], rows: rows))
            return 0
        case "revoke" where words.count == 2:
            let record = try registry.revoke(words[1])
            context.write("revoked API key \(record.id) (\(record.namespace == "*" ? "all namespaces" : "namespace " + record.namespace))\n")
            return 0
        default:
            throw MSBError(.invalidArgument, "unknown keys action '\(words.joined(separator: " "))'",
                           hint: "use 'msb server keys ls' or 'msb server keys revoke ID'")
        }
    }

    private static func expiry(_ record: APIKeyRecord, now: Date) -> String {
        guard let text = record.expires_at else { return "never" }
        guard let date = RemoteWire.date(text), date <= now else { return text }
        return text + " (expired)"
    }
}
