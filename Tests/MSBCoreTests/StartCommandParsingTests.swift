@testable import MSBCore
import Testing

/// The checks behind `--script`, `--shell`, `--start-command` and the SDKs' `scripts`,
/// `shell`, `exec`: script names become guest paths, so anything but a plain name is refused.
@Suite struct StartCommandParsingTests {
    @Test(arguments: ["build", "a.b_c-1", "X", String(repeating: "s", count: 64), ".hidden"])
    func plainScriptNamesAreAccepted(_ name: String) throws {
        try InputParsing.validateScriptName(name)
    }

    @Test(arguments: ["", ".", "..", "../etc/passwd", "a/b", "/abs", "a..b", "a b", "a\u{0}b", "tab\t", "ü",
                      String(repeating: "s", count: 65)])
    func otherScriptNamesAreRefused(_ name: String) {
        #expect(throws: MSBError.self) { try InputParsing.validateScriptName(name) }
    }

    @Test func scriptsAreCheckedTogether() throws {
        try InputParsing.validateScripts(["a": "true", "b": "echo \"$@\""])
        #expect(throws: MSBError.self) { try InputParsing.validateScripts(["a": ""]) }
        #expect(throws: MSBError.self) { try InputParsing.validateScripts(["a": "x\u{0}y"]) }
        #expect(throws: MSBError.self) { try InputParsing.validateScripts(["../a": "true"]) }
        let many = Dictionary(uniqueKeysWithValues: (0...InputParsing.maxScripts).map { ("s\($0)", "true") })
        #expect(throws: MSBError.self) { try InputParsing.validateScripts(many) }
    }

    @Test func scriptOptionsSplitAtTheFirstEquals() throws {
        let parsed = try InputParsing.parseScript("env=A=1 env")
        #expect(parsed.name == "env" && parsed.command == "A=1 env")
    }

    @Test func shellsAreAbsolutePathsWithoutNUL() throws {
        try InputParsing.validateShellPath("/bin/bash")
        for bad in ["bash", "", "/bin/sh\u{0}x", "./sh", "/" + String(repeating: "a", count: 4096)] {
            #expect(throws: MSBError.self) { try InputParsing.validateShellPath(bad) }
        }
    }

    @Test func aScriptFileRunsTheCommandWithSh() {
        #expect(String(decoding: InputParsing.guestScriptContent("make \"$@\""), as: UTF8.self) == "#!/bin/sh\nmake \"$@\"\n")
        #expect(InputParsing.guestScriptPath("build") == "/.msb/scripts/build")
    }
}
