import Testing
@testable import MSBCommands
@testable import MSBCore

@Suite struct ArgumentParserTests {
    let exec = ExecCommand.spec
    let create = CreateCommand.spec

    @Test func execTakesOptionsBeforeAndAfterTheName() throws {
        let parsed = try ArgumentParser.parse(["-e", "A=1", "web", "--timeout", "2s", "--", "sleep", "10"], spec: exec)
        #expect(parsed.positionals == ["web"])
        #expect(parsed.allValues("env") == ["A=1"])
        #expect(parsed.value("timeout") == "2s")
        #expect(parsed.trailing == ["sleep", "10"])
    }

    @Test func execCommandStartsAfterTheNameWithoutDashes() throws {
        let parsed = try ArgumentParser.parse(["web", "ls", "-la", "--color"], spec: exec)
        #expect(parsed.positionals == ["web"])
        #expect(parsed.trailing == ["ls", "-la", "--color"])
    }

    @Test func valueForms() throws {
        let parsed = try ArgumentParser.parse(["--name=web", "-m1G", "-eA=1", "-e", "B=2", "--cpus", "2"], spec: create)
        #expect(parsed.value("name") == "web")
        #expect(parsed.value("memory") == "1G")
        #expect(parsed.allValues("env") == ["A=1", "B=2"])
        #expect(parsed.value("cpus") == "2")
    }

    @Test func bundledFlags() throws {
        let parsed = try ArgumentParser.parse(["-iw", "/tmp", "web", "true"], spec: exec)
        #expect(parsed.flag("interactive"))
        #expect(parsed.value("workdir") == "/tmp")
    }

    @Test func unknownOptionSuggestsTheNearest() {
        let error = #expect(throws: MSBError.self) { try ArgumentParser.parse(["--nmae", "x"], spec: create) }
        #expect(error?.message == "unknown option '--nmae' for 'msb create'")
        #expect(error?.hint == "did you mean '--name'? run 'msb create --help' for usage")
        #expect(error?.code == .invalidArgument)
    }

    @Test func missingValueAndRepeatsAreErrors() {
        #expect(throws: MSBError.self) { try ArgumentParser.parse(["--memory"], spec: create) }
        #expect(throws: MSBError.self) { try ArgumentParser.parse(["--memory", "1G", "--memory", "2G"], spec: create) }
        #expect(throws: MSBError.self) { try ArgumentParser.parse(["stray"], spec: create) }
        #expect(throws: MSBError.self) { try ArgumentParser.parse([], spec: exec) }
    }

    @Test func negativeNumbersAreValues() throws {
        let parsed = try ArgumentParser.parse(["web", "--timeout", "-1", "--", "true"], spec: exec)
        #expect(parsed.value("timeout") == "-1")
    }
}

@Suite struct CommandTableTests {
    @Test func everyCommandAndOptionAppearsInHelp() {
        let overview = HelpRenderer.overview()
        for spec in CommandTable.visibleSpecs {
            #expect(overview.contains("  \(spec.name) "), "overview lacks \(spec.name)")
            let help = HelpRenderer.help(for: spec)
            #expect(help.contains("Usage: msb \(spec.name) "))
            for option in spec.allOptions {
                #expect(help.contains("--\(option.long)"), "help for \(spec.name) lacks --\(option.long)")
                if let short = option.short { #expect(help.contains("-\(short), --\(option.long)")) }
            }
        }
        #expect(!overview.contains("_supervise"))
    }

    @Test func namesAndShortOptionsAreUnique() {
        let names = CommandTable.specs.map(\.name)
        #expect(Set(names).count == names.count)
        for spec in CommandTable.specs {
            let longs = spec.allOptions.map(\.long)
            #expect(Set(longs).count == longs.count, "duplicate long option in \(spec.name)")
            let shorts = spec.allOptions.compactMap(\.short)
            #expect(Set(shorts).count == shorts.count, "duplicate short option in \(spec.name)")
        }
    }

    @Test func editDistance() {
        #expect(ArgumentParser.editDistance("nmae", "name") == 2)
        #expect(ArgumentParser.nearest("--forse", in: ["--force", "--help"]) == "--force")
        #expect(ArgumentParser.nearest("--zzzzzz", in: ["--force"]) == nil)
    }
}
