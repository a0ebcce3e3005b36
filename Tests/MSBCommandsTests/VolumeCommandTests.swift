import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// `msb volume create|ls|inspect|rm` and `create/run -v` against the fake backend: what
/// reaches the backend, the exact messages and exit codes, and the usage errors that reach nothing.
@Suite struct VolumeCommandTests {
    let harness = FakeBackendCommandTests()

    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        harness.run(arguments, backend)
    }

    static func sandbox(_ name: String, mounting specs: [String]) -> SandboxInfo {
        var info = FakeBackend.info(name, .running)
        info.config.volumes = specs.compactMap { try? VolumeMount.parse($0) }
        return info
    }

    @Test func createListInspectRemove() throws {
        let backend = FakeBackend(sandboxes: [])
        let created = run(["volume", "create", "data"], backend)
        #expect(created.status == 0 && created.out == "data\n" && created.err.isEmpty)
        let again = run(["volume", "create", "data"], backend)
        #expect(again.status == 1 && again.err == "error: volume already exists: data\n")
        _ = run(["volume", "create", "cache"], backend)
        #expect(run(["volume", "ls", "-q"], backend).out == "data\ncache\n")
        let table = run(["volume", "list"], backend).out.split(separator: "\n")
        #expect(table.count == 3 && table[0].split(separator: " ", omittingEmptySubsequences: true) == ["NAME", "USED", "BY", "CREATED"])
        #expect(table[1].hasPrefix("data ") && table[1].contains(" - "))

        let inspect = run(["volume", "inspect", "data"], backend)
        #expect(inspect.status == 0)
        #expect(inspect.out == """
            name:      data
            created:   2023-11-14T22:13:20Z
            host path: /msb/volumes/data/data
            size:      1.5MB
            used by:   -

            """)
        let json = run(["volume", "inspect", "data", "--format", "json"], backend)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["name", "namespace", "created_at", "host_path", "size_bytes", "used_by"])
        #expect(object["host_path"] as? String == "/msb/volumes/data/data" && object["size_bytes"] as? Int == 1_500_000)

        let removed = run(["volume", "rm", "data", "ghost", "cache"], backend)
        #expect(removed.out == "data\ncache\n" && removed.status == 1)
        #expect(removed.err == "error: volume not found: ghost\n  → run 'msb volume ls' to see volumes\n")
        #expect(backend.calls.filter { $0.hasPrefix("volume rm") } == ["volume rm data", "volume rm ghost", "volume rm cache"])
        #expect(run(["volume", "inspect", "data"], backend).status == 1)
    }

    @Test func aVolumeInUseIsNotRemoved() throws {
        let backend = FakeBackend(sandboxes: [Self.sandbox("web", mounting: ["data:/data"]), Self.sandbox("db", mounting: ["/srv:/srv"])])
        _ = run(["volume", "create", "data"], backend)
        let refused = run(["volume", "rm", "data"], backend)
        #expect(refused.status == 1 && refused.out.isEmpty)
        #expect(refused.err == "error: volume in use: data (by sandbox web)\n  → remove that sandbox first ('msb rm web')\n")
        let json = run(["volume", "ls", "--format", "json"], backend)
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        #expect(objects.first?["used_by"] as? [String] == ["web"])
        #expect(run(["volume", "inspect", "data"], backend).out.contains("used by:   web\n"))
    }

    @Test func usageErrorsReachNothing() {
        let backend = FakeBackend(sandboxes: [])
        let badName = run(["volume", "create", "../etc"], backend)
        #expect(badName.status == 2)
        #expect(badName.err == "error: invalid volume name '../etc'\n"
                + "  → names are 1-63 characters: letters, digits, '_', '.' and '-', starting with a letter or digit\n")
        #expect(run(["volume", "create"], backend).status == 2)
        #expect(run(["volume", "create", "a", "b"], backend).status == 2)
        #expect(run(["volume", "ls", "a"], backend).status == 2)
        #expect(run(["volume", "ls", "--format", "yaml"], backend).status == 2)
        #expect(run(["volume", "inspect"], backend).status == 2)
        #expect(run(["volume", "rm"], backend).status == 2)
        #expect(run(["volume", "rm", "ok", "a/b"], backend).status == 2)
        let unknown = run(["volume", "prune"], backend)
        #expect(unknown.status == 2 && unknown.err == "error: unknown volume action 'prune'\n  → use create, ls, inspect or rm\n")
        #expect(backend.calls.isEmpty)
    }

    @Test func volumeOptionsReachTheConfig() throws {
        let backend = FakeBackend(sandboxes: [])
        _ = run(["create", "--name", "dev", "-v", "/home/me/src/:/src:ro", "--volume", "cache:/root/.cache"], backend)
        #expect(backend.createdConfigs.first?.volumes == [
            VolumeMount(source: .hostPath("/home/me/src"), guestPath: "/src", readOnly: true),
            VolumeMount(source: .named("cache"), guestPath: "/root/.cache", readOnly: false),
        ])
        _ = run(["run", "--name", "once", "-v", "data:/data", "--", "true"], backend)
        #expect(backend.createdConfigs.last?.volumes?.map(\.specification) == ["data:/data"])
        _ = run(["create", "--name", "plain"], backend)
        #expect(backend.createdConfigs.last?.volumes == nil)
    }

    @Test func badVolumeOptionsAreUsageErrorsThatReachNothing() {
        let backend = FakeBackend(sandboxes: [])
        let relative = run(["create", "-v", "src:dst"], backend)
        #expect(relative.status == 2)
        #expect(relative.err == "error: invalid volume 'src:dst': the guest path must be absolute, not '/', without '.' or '..'\n"
                + "  → use HOSTDIR:GUESTDIR[:ro] (an absolute host directory) or NAME:GUESTDIR[:ro] (msb volume ls)\n")
        let overlap = run(["create", "-v", "a:/data", "-v", "b:/data/x"], backend)
        #expect(overlap.status == 2 && overlap.err == "error: volumes overlap in the guest: /data and /data/x\n")
        let fork = run(["create", "--from", "ready", "-v", "a:/data"], backend)
        #expect(fork.status == 2)
        #expect(fork.err == "error: -v/--volume cannot be used with --from: snapshots cannot carry volumes\n"
                + "  → QEMU cannot save a virtio-fs device; create the sandbox from an image to give it volumes\n")
        #expect(run(["run", "--from", "ready", "-v", "a:/data", "--", "true"], backend).status == 2)
        #expect(run(["create", "-v", "/etc:/proc"], backend).status == 2)
        #expect(backend.calls.isEmpty)
    }

    @Test func listAndInspectOfSandboxesShowTheirVolumes() throws {
        let backend = FakeBackend(sandboxes: [Self.sandbox("web", mounting: ["data:/data", "/srv/x:/x:ro"]), FakeBackend.info("db", .running)])
        let json = run(["ls", "--format", "json"], backend)
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        #expect(objects[0]["volumes"] as? [String] == ["data:/data", "/srv/x:/x:ro"])
        #expect(objects[1]["volumes"] == nil)
        // What a remote `ls` decodes is what was listed.
        let wire = try JSONDecoder().decode([RemoteWire.Sandbox].self, from: Data(json.out.utf8))
        #expect(wire[0].info.config.volumes == Self.sandbox("web", mounting: ["data:/data", "/srv/x:/x:ro"]).config.volumes)
        #expect(wire[1].info.config.volumes == nil)
    }

    @Test func theCommandAndOptionAreInTheOneTable() {
        #expect(CommandTable.command(named: "volume") != nil)
        #expect(VolumeCommand.spec.positionalCompletion == .volumeName)
        #expect(CreateCommand.spec.option(short: "v")?.long == "volume" && RunCommand.spec.option(long: "volume")?.repeatable == true)
    }
}
