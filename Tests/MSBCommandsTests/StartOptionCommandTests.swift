import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// The start options of create and run (`--hostname`, `--replace`, `--idle-timeout`,
/// `--depends-on`), against a backend the test controls: what reaches it, the exact
/// usage errors and their exit codes.
@Suite struct StartOptionCommandTests {
    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        let out = FakeBackendCommandTests.Recorder(), err = FakeBackendCommandTests.Recorder()
        let context = CommandContext(environment: ["HOME": "/nonexistent"], makeBackend: { backend },
                                     standardOutput: { out.append($0) }, standardError: { err.append($0) })
        let status = CLI.main(arguments, context: context)
        return (status, out.value, err.value)
    }

    /// The config `create ARGS` hands the backend (the fake one refuses to create it).
    func created(_ arguments: [String]) -> SandboxConfig? {
        let backend = FakeBackend(sandboxes: [])
        _ = run(["create", "--name", "n"] + arguments, backend)
        return backend.createdConfigs.first
    }

    func usageError(_ arguments: [String]) -> String? {
        let backend = FakeBackend(sandboxes: [])
        let result = run(arguments, backend)
        guard result.status == 2, backend.calls.isEmpty, result.out.isEmpty else { return nil }
        return result.err
    }

    @Test func hostnameReachesTheBackend() {
        #expect(created([])?.hostname == nil)
        #expect(created(["--hostname", "web-1.internal"])?.hostname == "web-1.internal")
        #expect(created(["--hostname=db"])?.hostname == "db")
    }

    @Test func badHostnamesAreUsageErrors() {
        let hint = "  → hostnames are dot-separated labels of 1-63 letters, digits and '-' (not first or last), 64 characters at most\n"
        #expect(usageError(["create", "--hostname", "-web"]) == "error: invalid hostname '-web'\n" + hint)
        #expect(usageError(["run", "--hostname", "a_b", "--", "true"]) == "error: invalid hostname 'a_b'\n" + hint)
        #expect(usageError(["create", "--hostname", String(repeating: "a", count: 64)]) != nil)
        #expect(usageError(["create", "--hostname", "a..b"]) != nil)
        #expect(usageError(["create", "--hostname", ""]) != nil)
    }
}

@Suite struct ReplaceCommandTests {
    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        StartOptionCommandTests().run(arguments, backend)
    }

    @Test func replaceRemovesTheSameNamedSandboxBeforeCreating() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        _ = run(["create", "--name", "web", "--replace"], backend)
        #expect(backend.calls == ["rm web", "create web"])
        _ = run(["run", "--name", "web", "--replace", "--", "true"], backend)
        #expect(backend.calls.suffix(2) == ["rm web", "create web"])
    }

    @Test func replaceOfANameNotThereJustCreates() {
        let backend = FakeBackend(sandboxes: [])
        _ = run(["create", "--name", "web", "--replace"], backend)
        #expect(backend.calls == ["rm web", "create web"])
        #expect(backend.createdConfigs.map(\.name) == ["web"])
    }

    @Test func withoutReplaceNothingIsRemoved() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        _ = run(["create", "--name", "web"], backend)
        #expect(backend.calls == ["create web"])
    }

    @Test func aBadOptionWithReplaceRemovesNothing() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let result = run(["create", "--name", "web", "--replace", "--hostname", "-x"], backend)
        #expect(result.status == 2)
        #expect(backend.calls.isEmpty)
    }
}

@Suite struct DependsOnCommandTests {
    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        StartOptionCommandTests().run(arguments, backend)
    }

    static func info(_ name: String, _ status: SandboxStatus, dependsOn: [String]? = nil) -> SandboxInfo {
        var info = FakeBackend.info(name, status)
        info.config.dependsOn = dependsOn
        return info
    }

    @Test func stoppedDependenciesStartFirstDependenciesOfDependenciesBeforeThem() {
        let backend = FakeBackend(sandboxes: [Self.info("db", .stopped, dependsOn: ["cache"]), Self.info("cache", .stopped),
                                              Self.info("queue", .running)])
        _ = run(["create", "--name", "web", "--depends-on", "db", "--depends-on", "queue", "--depends-on", "db"], backend)
        #expect(backend.calls == ["inspect db", "inspect cache", "inspect queue", "start cache", "start db", "create web"])
        #expect(backend.createdConfigs.first?.dependsOn == ["db", "queue"])
    }

    @Test func noStartChecksButStartsNothing() {
        let backend = FakeBackend(sandboxes: [Self.info("db", .stopped)])
        _ = run(["create", "--name", "web", "--depends-on", "db", "--no-start"], backend)
        #expect(backend.calls == ["inspect db", "create web"])
    }

    @Test func anUnknownDependencyIsRefusedBeforeAnythingHappens() {
        let backend = FakeBackend(sandboxes: [Self.info("web", .running)])
        let result = run(["create", "--name", "web", "--replace", "--depends-on", "ghost"], backend)
        #expect(result.status == 1)
        #expect(result.err == "error: sandbox web depends on ghost, which does not exist\n"
                + "  → create it first, or drop it from --depends-on / depends_on\n")
        #expect(backend.calls == ["inspect ghost"])
    }

    @Test func aCycleIsRefusedWithItsPath() {
        // a was made depending on b; b is now replaced by one depending on a.
        let backend = FakeBackend(sandboxes: [Self.info("a", .stopped, dependsOn: ["b"]), Self.info("b", .stopped)])
        let result = run(["create", "--name", "b", "--replace", "--depends-on", "a"], backend)
        #expect(result.status == 2)
        #expect(result.err == "error: dependency cycle: b → a → b\n  → a sandbox cannot depend, directly or through others, on itself\n")
        #expect(!backend.calls.contains("rm b") && !backend.calls.contains { $0.hasPrefix("start") })
    }

    @Test func aSandboxCannotDependOnItself() {
        let backend = FakeBackend(sandboxes: [])
        let result = run(["create", "--name", "web", "--depends-on", "web"], backend)
        #expect(result.status == 2 && result.err == "error: sandbox web cannot depend on itself\n")
        #expect(backend.calls.isEmpty)
        #expect(run(["create", "--name", "web", "--depends-on", "bad/name"], backend).status == 2)
    }

    @Test func startStartsAStoppedSandboxsDependenciesFirst() {
        let backend = FakeBackend(sandboxes: [Self.info("web", .stopped, dependsOn: ["db"]), Self.info("db", .stopped)])
        let result = run(["start", "web"], backend)
        #expect(result.status == 0 && result.out == "web\n")
        #expect(backend.calls == ["inspect web", "inspect db", "start db", "start web"])
        // A running sandbox is left as it is, and its dependencies too.
        let running = FakeBackend(sandboxes: [Self.info("web", .running, dependsOn: ["db"]), Self.info("db", .stopped)])
        _ = run(["start", "web"], running)
        #expect(running.calls == ["inspect web", "start web"])
    }
}

@Suite struct IdleTimeoutCommandTests {
    @Test func idleTimeoutIsADuration() {
        let tests = StartOptionCommandTests()
        #expect(tests.created([])?.idleTimeoutMilliseconds == nil)
        #expect(tests.created(["--idle-timeout", "3"])?.idleTimeoutMilliseconds == 3000)
        #expect(tests.created(["--idle-timeout", "10m"])?.idleTimeoutMilliseconds == 600_000)
        #expect(tests.usageError(["create", "--idle-timeout", "0"])
                == "error: invalid duration '0'\n  → use a positive duration such as 500ms, 30s, 5m or 1h\n")
        #expect(tests.usageError(["run", "--idle-timeout", "soon", "--", "true"]) != nil)
    }
}
