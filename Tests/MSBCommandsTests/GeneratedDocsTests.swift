import Foundation
import Testing
@testable import MSBCommands

/// The committed completion scripts, man page and README sections are what the command
/// table generates: run scripts/generate-docs.sh after changing a command.
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

    @Test func readmeSectionsMatchTheTable() throws {
        let regions = try ReadmeSections.regions(in: committed("README.md"))
        for region in regions {
            #expect(region.content == (try ReadmeSections.content(for: region.key)),
                    "README.md's generated section '\(region.key)' drifted from the command table: run scripts/generate-docs.sh")
        }
        #expect(Set(regions.map(\.key)).isSuperset(of: ["commands", "options create", "options exec", "options run", "options wait"]))
    }

    @Test func readmeHasNoHandWrittenOptionTable() throws {
        let readme = try committed("README.md")
        let generated = try ReadmeSections.regions(in: readme).filter { $0.key.hasPrefix("options ") }.count
        let tables = readme.split(separator: "\n").filter { $0.hasPrefix("| option |") }.count
        #expect(tables == generated, """
            README.md has an option table outside its generated sections: replace it with \
            '<!-- BEGIN generated: options COMMAND -->' and '<!-- END generated: options COMMAND -->' \
            and run scripts/generate-docs.sh
            """)
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
