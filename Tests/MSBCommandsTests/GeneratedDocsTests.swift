import Foundation
import Testing
@testable import MSBCommands

/// The committed completion scripts and man page are what the command table generates:
/// run scripts/generate-docs.sh after changing a command.
@Suite struct GeneratedDocsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    func committed(_ path: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test(arguments: CompletionScripts.shells)
    func completionScriptsMatchTheTable(_ shell: String) throws {
        let file = "completions/" + CompletionScripts.fileName(for: shell)
        #expect(try committed(file) == CompletionScripts.script(for: shell), "\(file) drifted: run scripts/generate-docs.sh")
    }

    @Test func manPageMatchesTheTable() throws {
        #expect(try committed("man/msb.1") == ManPage.render(), "man/msb.1 drifted: run scripts/generate-docs.sh")
    }

    @Test func everyCommandAndOptionIsDocumented() {
        let man = ManPage.render()
        for spec in CommandTable.visibleSpecs {
            #expect(man.contains(".SS \"msb \(ManPage.escape(spec.name)) "))
            for option in spec.allOptions {
                #expect(man.contains("\\-\\-\(ManPage.escape(option.long))"), "man lacks --\(option.long)")
                for shell in CompletionScripts.shells {
                    let script = CompletionScripts.script(for: shell) ?? ""
                    let needle = shell == "fish" ? "-l \(option.long)" : "--\(option.long)"
                    #expect(script.contains(needle), "\(shell) completion lacks --\(option.long) of \(spec.name)")
                }
            }
        }
        #expect(!man.contains("_supervise"))
    }
}
