import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// `msb snapshot create|ls|rm` and `create/run --from` against the fake backend: what reaches
/// the backend, what is printed, and the usage errors that reach nothing.
@Suite struct SnapshotCommandTests {
    let harness = FakeBackendCommandTests()

    func run(_ arguments: [String], _ backend: FakeBackend) -> (status: Int32, out: String, err: String) {
        harness.run(arguments, backend)
    }

    @Test func argumentsParse() throws {
        let create = try ArgumentParser.parse(["create", "web", "ready"], spec: SnapshotCommand.spec)
        #expect(create.positionals == ["create", "web", "ready"])
        let list = try ArgumentParser.parse(["ls", "--format", "json"], spec: SnapshotCommand.spec)
        #expect(list.positionals == ["ls"] && list.value("format") == "json")
        #expect(throws: MSBError.self) { try ArgumentParser.parse([], spec: SnapshotCommand.spec) }
        let from = try ArgumentParser.parse(["--from=ready", "--name", "web2"], spec: CreateCommand.spec)
        #expect(from.value("from") == "ready")
        #expect(RunCommand.spec.option(long: "from") != nil)
    }

    @Test func createWithoutASnapshotNameUsesTheSandboxNameAndTheUTCTime() {
        let date = Date(timeIntervalSince1970: 1_700_000_000)  // 2023-11-14 22:13:20 UTC
        #expect(SnapshotCommand.defaultName(of: "web", at: date) == "web-20231114-221320")
        let long = String(repeating: "a", count: 63)
        let cut = SnapshotCommand.defaultName(of: long, at: date)
        #expect(cut == String(repeating: "a", count: 47) + "-20231114-221320")
        #expect((try? InputParsing.validateSnapshotName(cut)) != nil)

        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let result = run(["snapshot", "create", "web"], backend)
        #expect(result.status == 0)
        #expect(result.out.wholeMatch(of: /web-\d{8}-\d{6}\n/) != nil, "\(result.out)")
        #expect(backend.calls == ["snapshot create web \(result.out.dropLast())"])
    }

    @Test func createWithAName() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let result = run(["snapshot", "create", "web", "ready"], backend)
        #expect(result.status == 0 && result.out == "ready\n" && result.err.isEmpty)
        #expect(backend.calls == ["snapshot create web ready"])
        let again = run(["snapshot", "create", "web", "ready"], backend)
        #expect(again.status == 1 && again.err == "error: snapshot ready already exists\n")
    }

    @Test func badSnapshotCallsAreUsageErrorsThatReachNothing() {
        let backend = FakeBackend(sandboxes: [FakeBackend.info("web", .running)])
        let badName = run(["snapshot", "create", "web", "../x"], backend)
        #expect(badName.status == 2)
        #expect(badName.err.hasPrefix("error: invalid snapshot name '../x'\n  → names are 1-63 characters"))
        #expect(run(["snapshot", "create"], backend).status == 2)
        #expect(run(["snapshot", "create", "web", "a", "b"], backend).status == 2)
        #expect(run(["snapshot", "ls", "web"], backend).status == 2)
        #expect(run(["snapshot", "rm"], backend).status == 2)
        let unknown = run(["snapshot", "fork", "web"], backend)
        #expect(unknown.status == 2 && unknown.err == "error: unknown snapshot action 'fork'\n  → use create, ls or rm\n")
        #expect(backend.calls.isEmpty)
    }

    @Test func listAsTableNamesAndJSON() throws {
        let backend = FakeBackend(sandboxes: [], snapshots: [
            FakeBackend.snapshot("ready", of: "web", digest: "sha256:" + String(repeating: "ab", count: 32)),
            FakeBackend.snapshot("base-ready", of: "gone"),
        ])
        let table = run(["snapshot", "ls"], backend)
        #expect(table.status == 0)
        let lines = table.out.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].split(separator: " ", omittingEmptySubsequences: true)
                == ["NAME", "SOURCE", "IMAGE", "MEMORY", "CPUS", "SIZE", "CREATED"])
        #expect(lines[1].hasPrefix("ready ") && lines[1].contains(" web ") && lines[1].contains(" 1.5MB "))
        #expect(run(["snapshot", "list", "-q"], backend).out == "ready\nbase-ready\n")

        let json = run(["snapshot", "ls", "--format", "json"], backend)
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        #expect(objects.count == 2)
        #expect(Set(objects[0].keys) == ["name", "namespace", "source", "image", "image_digest", "cpus", "memory_mib",
                                         "created_at", "size_bytes"])
        #expect(Set(objects[1].keys) == Set(objects[0].keys).subtracting(["image_digest"]))
        #expect(objects[0]["name"] as? String == "ready" && objects[0]["namespace"] as? String == "default")
        #expect(objects[0]["source"] as? String == "web" && objects[0]["image"] as? String == "python")
        #expect(objects[0]["cpus"] as? Int == 2 && objects[0]["memory_mib"] as? Int == 1024)
        #expect(objects[0]["created_at"] as? String == "2023-11-14T22:13:20Z" && objects[0]["size_bytes"] as? Int == 1_500_000)
        #expect(run(["snapshot", "ls", "--format", "yaml"], backend).status == 2)
    }

    @Test func removeTriesEveryNameAndAnyFailureFailsTheCommand() {
        let backend = FakeBackend(sandboxes: [], snapshots: [FakeBackend.snapshot("a", of: "web"), FakeBackend.snapshot("b", of: "web")])
        let result = run(["snapshot", "rm", "a", "ghost", "b"], backend)
        #expect(backend.calls == ["snapshot rm a", "snapshot rm ghost", "snapshot rm b"])
        #expect(result.out == "a\nb\n")
        #expect(result.err == "error: snapshot not found: ghost\n  → run 'msb snapshot ls' to see snapshots\n")
        #expect(result.status == 1)
        let one = run(["snapshot", "remove", "ghost"], backend)
        #expect(one.status == 1 && one.out.isEmpty)
    }

    @Test func fromSetsTheSnapshotOfTheNewSandbox() {
        let backend = FakeBackend(sandboxes: [])
        _ = run(["create", "--name", "web2", "--from", "ready"], backend)
        #expect(backend.calls == ["create web2 from ready"])
    }

    @Test func fromWithImageMemoryOrCpusIsAUsageErrorThatReachesNothing() {
        let backend = FakeBackend(sandboxes: [])
        let image = run(["create", "--from", "ready", "--image", "python"], backend)
        #expect(image.status == 2)
        #expect(image.err == "error: --from takes the image, memory and cpus of the snapshot; drop --image\n")
        let all = run(["create", "--from", "ready", "--cpus", "2", "-m", "1G", "--image", "node"], backend)
        #expect(all.status == 2)
        #expect(all.err == "error: --from takes the image, memory and cpus of the snapshot; drop --image, --memory and --cpus\n")
        let runMemory = run(["run", "--from", "ready", "--memory", "1G", "--", "true"], backend)
        #expect(runMemory.status == 2)
        #expect(runMemory.err == "error: --from takes the image, memory and cpus of the snapshot; drop --memory\n")
        let badName = run(["create", "--from", "no/such"], backend)
        #expect(badName.status == 2 && badName.err.hasPrefix("error: invalid snapshot name 'no/such'"))
        #expect(backend.calls.isEmpty)
    }
}
