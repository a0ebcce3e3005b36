/// Parsers for what people type: sandbox names, sizes (`512M`, `1G`) and durations
/// (`500ms`, `30s`, `5m`, `1h30m`). Each failure says what was wrong and what is accepted.
public enum InputParsing {
    /// `[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}`: safe as a directory name and a socket path part.
    public static func validateName(_ name: String) throws(MSBError) {
        try validateName(name, kind: "sandbox")
    }

    /// Snapshot names follow the sandbox name rule (they name directories too).
    public static func validateSnapshotName(_ name: String) throws(MSBError) {
        try validateName(name, kind: "snapshot")
    }

    private static func validateName(_ name: String, kind: String) throws(MSBError) {
        let bytes = Array(name.utf8)
        func isAlnum(_ b: UInt8) -> Bool {
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
        }
        let valid = !bytes.isEmpty && bytes.count <= 63 && isAlnum(bytes[0])
            && bytes.allSatisfy { isAlnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }
        guard valid else {
            throw MSBError(
                .invalidArgument, "invalid \(kind) name '\(name)'",
                hint: "names are 1-63 characters of letters, digits, '_', '.', '-', starting with a letter or digit")
        }
    }

    /// Server namespaces: `[A-Za-z0-9][A-Za-z0-9_-]{0,62}`, the SDKs' reference rule. Case
    /// matters (`Team` and `team` are two namespaces). Never a path: no '/', '.', NUL or
    /// anything outside ASCII; on disk each gets a directory name of its own
    /// (`NamespaceDirectory` in MSBServer), whatever the file system does with case.
    public static func validateNamespace(_ namespace: String) throws(MSBError) {
        let bytes = Array(namespace.utf8)
        func isAlnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
        guard !bytes.isEmpty, bytes.count <= 63, isAlnum(bytes[0]),
              bytes.allSatisfy({ isAlnum($0) || $0 == 95 || $0 == 45 }) else {
            throw MSBError(.invalidArgument, "invalid namespace '\(namespace)'",
                           hint: "namespaces are 1-63 characters of letters, digits, '_' and '-', starting with a letter or digit")
        }
    }

    /// A guest hostname (`--hostname`, `hostname`): RFC 1123 labels of letters, digits and
    /// `-` (not first or last), 1-63 bytes each, joined by dots; at most 64 bytes in all,
    /// the kernel's limit for `sethostname`.
    public static func validateHostname(_ hostname: String) throws(MSBError) {
        func isAlnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
        let bytes = Array(hostname.utf8)
        let labels = bytes.split(separator: 46, omittingEmptySubsequences: false)
        let valid = !bytes.isEmpty && bytes.count <= 64 && labels.allSatisfy { label in
            guard let first = label.first, let last = label.last, label.count <= 63 else { return false }
            return isAlnum(first) && isAlnum(last) && label.allSatisfy { isAlnum($0) || $0 == 45 }
        }
        guard valid else {
            throw MSBError(.invalidArgument, "invalid hostname '\(PrintableText.escaped(hostname, maxScalars: 80))'",
                           hint: "hostnames are dot-separated labels of 1-63 letters, digits and '-' (not first or last), 64 characters at most")
        }
    }

    /// Parses a memory size into MiB. A bare number means MiB.
    public static func parseMemoryMiB(_ text: String) throws(MSBError) -> Int {
        let bad = MSBError(
            .invalidArgument, "invalid memory size '\(text)'", hint: "use a size such as 512M, 1G or 2048 (MiB)")
        let lower = text.lowercased()
        let digits = lower.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 9, let number = Int(digits, radix: 10) else { throw bad }
        let unit = lower.dropFirst(digits.count)
        let mib: Int
        switch unit {
        case "", "m", "mb", "mib": mib = number
        case "g", "gb", "gib": mib = number * 1024
        case "k", "kb", "kib":
            guard number % 1024 == 0 else { throw bad }
            mib = number / 1024
        default: throw bad
        }
        guard mib >= 64 else {
            throw MSBError(.invalidArgument, "memory size '\(text)' is too small", hint: "sandboxes need at least 64M")
        }
        guard mib <= 1024 * 1024 else {
            throw MSBError(.invalidArgument, "memory size '\(text)' is too large", hint: "the limit is 1024G")
        }
        return mib
    }

    public static func parseCPUs(_ text: String) throws(MSBError) -> Int {
        guard let count = Int(text, radix: 10), count >= 1, count <= 64 else {
            throw MSBError(.invalidArgument, "invalid cpu count '\(text)'", hint: "use a whole number from 1 to 64")
        }
        return count
    }

    /// Parses a duration into milliseconds. A bare number means seconds.
    public static func parseDurationMilliseconds(_ text: String) throws(MSBError) -> UInt64 {
        let bad = MSBError(
            .invalidArgument, "invalid duration '\(text)'", hint: "use a positive duration such as 500ms, 30s, 5m or 1h")
        if let seconds = Double(text), !text.hasPrefix("+") {
            // Under a millisecond would round to 0, which callers read as "no limit".
            guard seconds * 1000 >= 1, seconds < 1e9 else { throw bad }
            // Bounded above, so the conversion cannot trap.
            return UInt64(exactly: (seconds * 1000).rounded(.down)) ?? 1
        }
        var total: Double = 0
        var rest = Substring(text)
        guard !rest.isEmpty else { throw bad }
        while !rest.isEmpty {
            let number = rest.prefix { ($0.isASCII && $0.isNumber) || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { throw bad }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += value
            case "s": total += value * 1000
            case "m": total += value * 60_000
            case "h": total += value * 3_600_000
            case "d": total += value * 86_400_000
            default: throw bad
            }
        }
        guard total >= 1, total < 1e15 else { throw bad }
        return UInt64(exactly: total.rounded(.down)) ?? 1
    }

    /// `KEY=VALUE` with a non-empty key made of letters, digits and '_'.
    public static func validateEnvironment(_ item: String) throws(MSBError) {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex,
              item[..<eq].allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
            throw MSBError(.invalidArgument, "invalid environment variable '\(item)'", hint: "use KEY=VALUE")
        }
    }

    /// Formats MiB the way people write it: 512M, 1G, 1536M.
    public static func formatMemory(mib: Int) -> String {
        mib % 1024 == 0 ? "\(mib / 1024)G" : "\(mib)M"
    }
}
