/// Checks for the SDKs' `shell`, `scripts` and `exec` (`--shell`, `--script`,
/// `--start-command`). They come from remote clients too, so every name that becomes a
/// guest path and every text sent to the guest is bounded and checked here.
extension InputParsing {
    /// At most this many scripts per sandbox.
    public static let maxScripts = 64
    /// A script name's most bytes (it becomes `/.msb/scripts/NAME`).
    public static let maxScriptNameBytes = 64
    /// A script's or the start command's most bytes: far under one protocol frame.
    public static let maxCommandBytes = 64 * 1024
    /// Where each start writes the scripts in the guest.
    public static let guestScriptsDirectory = "/.msb/scripts"

    /// `[A-Za-z0-9._-]{1,64}`, neither `.` nor `..` nor containing `..`: one plain file
    /// name under `/.msb/scripts`, never a path.
    public static func validateScriptName(_ name: String) throws(MSBError) {
        let bytes = Array(name.utf8)
        func allowed(_ b: UInt8) -> Bool {
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 46 || b == 95 || b == 45
        }
        guard !bytes.isEmpty, bytes.count <= maxScriptNameBytes, bytes.allSatisfy(allowed), name != ".", !name.contains("..") else {
            throw MSBError(.invalidArgument, "invalid script name '\(PrintableText.escaped(name, maxScalars: 80))'",
                           hint: "script names are 1-\(maxScriptNameBytes) letters, digits, '.', '_' and '-', without '..'")
        }
    }

    /// A script's command or the start command: not empty, no NUL (it becomes an argv
    /// string and a file), at most `maxCommandBytes`.
    public static func validateCommandText(_ command: String, what: String) throws(MSBError) {
        let bytes = command.utf8
        guard !command.isEmpty, bytes.count <= maxCommandBytes, !bytes.contains(0) else {
            throw MSBError(.invalidArgument, "invalid \(what): it must be 1 to \(maxCommandBytes) bytes without NUL")
        }
    }

    /// The scripts of a config, all checked together.
    public static func validateScripts(_ scripts: [String: String]) throws(MSBError) {
        guard scripts.count <= maxScripts else {
            throw MSBError(.invalidArgument, "too many scripts (\(scripts.count)): at most \(maxScripts)")
        }
        for (name, command) in scripts {
            try validateScriptName(name)
            try validateCommandText(command, what: "command of script \(name)")
        }
    }

    /// `NAME=CMD` of `--script` (repeatable; a later one of the same name wins).
    public static func parseScript(_ text: String) throws(MSBError) -> (name: String, command: String) {
        guard let eq = text.firstIndex(of: "=") else {
            throw MSBError(.invalidArgument, "invalid --script '\(PrintableText.escaped(text, maxScalars: 80))'",
                           hint: "use NAME=COMMAND, e.g. --script test='make test'")
        }
        let name = String(text[..<eq]), command = String(text[text.index(after: eq)...])
        try validateScriptName(name)
        try validateCommandText(command, what: "command of script \(name)")
        return (name, command)
    }

    /// The shell `msb shell` opens: an absolute guest path without NUL, at most 4096 bytes.
    public static func validateShellPath(_ path: String) throws(MSBError) {
        guard path.hasPrefix("/"), path.utf8.count <= 4096, !path.utf8.contains(0) else {
            throw MSBError(.invalidArgument, "invalid shell '\(PrintableText.escaped(path, maxScalars: 80))'",
                           hint: "give the shell's absolute path in the guest, e.g. /bin/bash")
        }
    }

    /// The file a script is written to at start, in the guest.
    public static func guestScriptPath(_ name: String) -> String { guestScriptsDirectory + "/" + name }

    /// The file's content: a `#!/bin/sh` script that runs the command with its arguments.
    public static func guestScriptContent(_ command: String) -> [UInt8] { Array(("#!/bin/sh\n" + command + "\n").utf8) }
}
