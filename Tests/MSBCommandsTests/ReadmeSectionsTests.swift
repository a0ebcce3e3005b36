import MSBCore
import Testing
@testable import MSBCommands

/// How `msb _readme` rewrites README.md's generated sections.
@Suite struct ReadmeSectionsTests {
    @Test func aStaleSectionIsRewrittenAndTheRestKept() throws {
        let readme = """
            # title
            before
            <!-- BEGIN generated: options stop -->
            | option | meaning |
            | stale | row |
            <!-- END generated: options stop -->
            after

            """
        let rewritten = try ReadmeSections.regenerated(readme)
        #expect(rewritten == """
            # title
            before
            <!-- BEGIN generated: options stop -->
            | option | meaning |
            |---|---|
            | `-f, --force` | Kill the VM at once instead of a graceful stop |
            <!-- END generated: options stop -->
            after

            """)
        #expect(try ReadmeSections.regenerated(rewritten) == rewritten)
    }

    @Test func pipesInTextAreEscapedForMarkdown() throws {
        let table = try ReadmeSections.content(for: "options create")
        #expect(table.contains("`[HOSTIP:]HOSTPORT:GUESTPORT[/tcp\\|udp]`"))
        #expect(table.contains("| `-u, --user USER` |"))
        #expect(table.contains("| `--no-start` |"))
        #expect(!table.contains("--help"))
    }

    @Test func theCommandListHasEveryVisibleCommand() throws {
        let list = try ReadmeSections.content(for: "commands")
        for spec in CommandTable.visibleSpecs { #expect(list.contains("  \(spec.name) ")) }
        #expect(!list.contains("_readme"))
    }

    @Test func unknownSectionsAndUnclosedOnesAreRefused() {
        #expect(throws: MSBError.self) { try ReadmeSections.regenerated("<!-- BEGIN generated: options nosuch -->\n<!-- END generated: options nosuch -->\n") }
        #expect(throws: MSBError.self) { try ReadmeSections.regenerated("<!-- BEGIN generated: commands -->\nno end\n") }
        #expect(throws: MSBError.self) { try ReadmeSections.regenerated("<!-- BEGIN generated: options _readme -->\n<!-- END generated: options _readme -->\n") }
    }
}
