import Foundation
import Testing

/// Bad input gets one clear error line (plus a hint), a documented exit code, and
/// leaves state untouched.
@Suite struct BadInputTests {
    func expectError(_ arguments: [String], status: Int32, _ message: String, hint: String? = nil,
                     env: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try MSBHarness.run(arguments, env: env)
        #expect(result.status == status, "exit status of msb \(arguments.joined(separator: " "))", sourceLocation: sourceLocation)
        let expected = "error: \(message)\n" + (hint.map { "  → \($0)\n" } ?? "")
        #expect(result.stderr == expected, sourceLocation: sourceLocation)
        #expect(result.out.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func badValuesAreUsageErrors() throws {
        // A state directory of its own, so sandboxes other suites create meanwhile don't count.
        let home = MSBHarness.home + "/bad-input"
        let env = ["MSB_HOME": home, "MSB_ACCEL": "tcg"]
        try MSBHarness.ok(["create", "--name", "keeper", "--max-duration", "1h"], env: env)
        defer { _ = try? MSBHarness.run(["rm", "-f", "keeper"], env: env) }
        let before = try MSBHarness.run(["ls", "--format", "json"], env: env).out
        try expectError(["create", "--name", "bad name"], status: 2, "invalid sandbox name 'bad name'",
                        hint: "names are 1-63 characters of letters, digits, '_', '.', '-', starting with a letter or digit", env: env)
        try expectError(["create", "--name", ".hidden"], status: 2, "invalid sandbox name '.hidden'",
                        hint: "names are 1-63 characters of letters, digits, '_', '.', '-', starting with a letter or digit", env: env)
        try expectError(["create", "--memory", "12XB"], status: 2, "invalid memory size '12XB'",
                        hint: "use a size such as 512M, 1G or 2048 (MiB)", env: env)
        try expectError(["create", "--cpus", "0"], status: 2, "invalid cpu count '0'", hint: "use a whole number from 1 to 64", env: env)
        try expectError(["exec", "x", "--timeout", "-1", "--", "true"], status: 2, "invalid duration '-1'",
                        hint: "use a positive duration such as 500ms, 30s, 5m or 1h", env: env)
        try expectError(["create", "--accel", "warp"], status: 2, "invalid accelerator 'warp'", hint: "use auto, kvm or tcg", env: env)
        try expectError(["create", "-e", "NOEQUALS"], status: 2, "invalid environment variable 'NOEQUALS'", hint: "use KEY=VALUE", env: env)
        try expectError(["create", "--no-net", "-p", "8080:80"], status: 2,
                        "--no-net leaves the sandbox without a network; drop -p/--publish or drop --no-net", env: env)
        try expectError(["create", "-p", "8080:80", "-p", "0.0.0.0:8080-8081:90-91"], status: 2,
                        "published ports overlap: 127.0.0.1:8080:80/tcp and 0.0.0.0:8080-8081:90-91/tcp both bind host port 8080/tcp",
                        hint: "publish each host port once", env: env)
        try expectError(["create", "--net-deny", "10.1.2.3/33"], status: 2, "invalid network rule '10.1.2.3/33'",
                        hint: "use CIDR[:PORT], for example 10.20.0.0/16, 10.30.1.5:5432 or [fd00::/8]:443", env: env)
        // --pull never: the default (missing) would ask Docker Hub, and tests reach no network.
        try expectError(["create", "--image", "nope", "--pull", "never"], status: 1, "image not found: nope",
                        hint: "pull it with 'msb pull nope' or use --pull missing", env: env)
        #expect(try MSBHarness.run(["ls", "--format", "json"], env: env).out == before)
        try expectError(["create", "--name", "keeper"], status: 1, "sandbox already exists: keeper",
                        hint: "choose another --name, or remove it with 'msb rm keeper'", env: env)
        #expect(try MSBHarness.run(["ls", "--format", "json"], env: env).out == before)
    }

    @Test func unknownOptionsAndCommands() throws {
        try expectError(["create", "--nmae", "x"], status: 2, "unknown option '--nmae' for 'msb create'",
                        hint: "did you mean '--name'? run 'msb create --help' for usage")
        try expectError(["exec", "--bogus", "x", "--", "true"], status: 2, "unknown option '--bogus' for 'msb exec'",
                        hint: "run 'msb exec --help' for usage")
        try expectError(["crate"], status: 2, "unknown command 'crate'", hint: "did you mean 'create'? run 'msb --help' for commands")
        try expectError(["exec", "x"], status: 2, "no command given",
                        hint: "put the command after the sandbox name, e.g. msb exec web -- uname -a")
        try expectError(["stop"], status: 2, "'msb stop' needs NAME [NAME...]", hint: "run 'msb stop --help' for usage")
    }

    @Test func unknownSandboxes() throws {
        try expectError(["exec", "nope", "--", "true"], status: 1, "sandbox not found: nope", hint: "run 'msb ls' to see sandboxes")
        try expectError(["stop", "nope"], status: 1, "sandbox not found: nope", hint: "run 'msb ls' to see sandboxes")
        try expectError(["rm", "nope"], status: 1, "sandbox not found: nope", hint: "run 'msb ls' to see sandboxes")
        try expectError(["start", "nope"], status: 1, "sandbox not found: nope", hint: "run 'msb ls' to see sandboxes")
    }

    @Test func duplicateNameIsRefusedAndTheFirstKeepsRunning() throws {
        let name = SharedSandbox.name
        try expectError(["create", "--name", name], status: 1, "sandbox already exists: \(name)",
                        hint: "choose another --name, or remove it with 'msb rm \(name)'")
        #expect(try MSBHarness.ok(["exec", name, "--", "echo", "still"]) == "still\n")
    }

    @Test func helpAndVersion() throws {
        #expect(try MSBHarness.ok(["--version"]) == "msb 0.1.0\n")
        let help = try MSBHarness.ok(["--help"])
        for command in ["create", "start", "exec", "run", "ls", "stop", "rm"] { #expect(help.contains("  \(command) ")) }
        #expect(try MSBHarness.ok(["help", "exec"]) == (try MSBHarness.ok(["exec", "--help"])))
        #expect(try MSBHarness.ok(["exec", "--help"]).contains("Usage: msb exec [OPTIONS] NAME [--] COMMAND [ARG...]"))
        #expect(try MSBHarness.run([]).status == 2)
    }
}
