import Foundation
import MSBClient
import MSBCore
import Testing
@testable import MSBCommands

/// `--pull`, `--insecure-registry` and `MSB_REGISTRY_AUTH` on create and run: what reaches
/// the backend's create, and the usage errors. Real pulls: IntegrationTests/ImageFirstUseTests.
@Suite struct PullOptionCommandTests {
    func run(_ arguments: [String], _ backend: FakeBackend, environment: [String: String] = [:]) -> (status: Int32, err: String) {
        let out = FakeBackendCommandTests.Recorder(), err = FakeBackendCommandTests.Recorder()
        let context = CommandContext(environment: ["HOME": "/nonexistent"].merging(environment) { $1 }, makeBackend: { backend },
                                     standardOutput: { out.append($0) }, standardError: { err.append($0) })
        return (CLI.main(arguments, context: context), err.value)
    }

    func fetch(_ arguments: [String], environment: [String: String] = [:]) -> ImageFetch? {
        let backend = FakeBackend(sandboxes: [])
        _ = run(arguments, backend, environment: environment)
        return backend.createdFetches.first ?? nil
    }

    @Test func missingIsTheDefaultAndEachPolicyReachesTheBackend() {
        #expect(fetch(["create", "--name", "n", "--image", "alpine:3.20"])?.policy == .missing)
        #expect(fetch(["create", "--name", "n", "--pull", "always"])?.policy == .always)
        #expect(fetch(["create", "--name", "n", "--pull=never"])?.policy == .never)
        #expect(fetch(["run", "--pull", "never", "--", "true"])?.policy == .never)
        #expect(fetch(["run", "--image", "x:1", "--pull", "always"])?.policy == .always)
    }

    @Test func credentialsComeFromTheEnvironmentAndInsecureFromItsFlag() {
        let given = fetch(["create", "--name", "n", "--insecure-registry"], environment: ["MSB_REGISTRY_AUTH": "me:pw"])
        #expect(given?.credentials == "me:pw" && given?.insecure == true)
        let plain = fetch(["create", "--name", "n"], environment: ["MSB_REGISTRY_AUTH": ""])
        #expect(plain?.credentials == nil && plain?.insecure == false)
    }

    @Test func aBadPolicyIsAUsageErrorThatTouchesNothing() {
        for command in [["create", "--name", "n", "--pull", "sometimes"], ["run", "--pull", "sometimes", "--", "true"]] {
            let backend = FakeBackend(sandboxes: [])
            let result = run(command, backend)
            #expect(result.status == 2)
            #expect(result.err == "error: invalid --pull 'sometimes'\n  → use missing, always or never\n")
            #expect(backend.calls.isEmpty)
        }
    }
}
