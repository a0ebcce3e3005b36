import MSBClient
import MSBCore

/// Runs `body` for every name; reports each failure and returns 1 if any failed,
/// like `docker stop a b c`.
func forEachName(_ names: [String], _ context: CommandContext, _ body: (String) throws(MSBError) -> Void) throws(MSBError) -> Int32 {
    if names.count == 1 {
        try body(names[0])
        return 0
    }
    var code: Int32 = 0
    for name in names {
        do { try body(name) } catch {
            code = max(code, context.report(error))
        }
    }
    return code
}
