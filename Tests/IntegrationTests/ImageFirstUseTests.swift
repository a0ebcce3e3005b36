import Foundation
import Testing

/// Images on first use: `create --pull` against the local registry (RegistryTests' fixture),
/// and a fresh server (its own empty image store) serving the Python SDK's default
/// `PythonSandbox.create()` with no prior `msb image build`: the one python build of this
/// suite that mmdebstrap does on first use.
@Suite(.serialized) struct ImageFirstUseTests {
    /// create --no-start: the image is fetched and the disk made, no VM boots.
    @Test func createPullsOnceUnderMissingRechecksUnderAlwaysAndNeverRefuses() throws {
        let registry = try #require(RegistryTests.registry, "the test registry did not start")
        let reference = "\(registry.address)/test/fixture:1"
        // A state directory of its own: nothing pulled, no blob cached.
        let env = ["MSB_HOME": MSBHarness.home + "/first-use"]
        defer { for name in ["fu-a", "fu-b", "fu-c"] { _ = try? MSBHarness.run(["rm", "-f", name], env: env) } }

        let never = try MSBHarness.run(["create", "--name", "fu-a", "--no-start", "--image", reference, "--pull", "never"], env: env)
        #expect(never.status == 1)
        #expect(never.stderr == "error: image not found: \(reference)\n  → pull it with 'msb pull \(reference)' or use --pull missing\n")

        let first = try MSBHarness.run(["create", "--name", "fu-a", "--no-start", "--image", reference, "--insecure-registry"], env: env)
        #expect(first.status == 0 && first.out == "fu-a\n", "\(first.stderr)")
        #expect(first.stderr.hasPrefix("msb: pulling image \(reference)\n"))
        #expect(first.stderr.contains(" bytes\n"))  // layers downloaded

        // missing (the default): the image is here, the registry is not asked.
        let second = try MSBHarness.run(["create", "--name", "fu-b", "--no-start", "--image", reference], env: env)
        #expect(second.status == 0 && second.stderr.isEmpty, "\(second.stderr)")

        // always: the registry is asked again; the digest is unchanged, so nothing is downloaded.
        let again = try MSBHarness.run(["create", "--name", "fu-c", "--no-start", "--image", reference, "--pull", "always",
                                        "--insecure-registry"], env: env)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("msb: pulling image \(reference)\n") && again.stderr.contains("is stored already"))
        #expect(!again.stderr.contains(" bytes\n"))
        // Without --insecure-registry the re-check speaks HTTPS to a plain-HTTP registry: it fails, proving it asked.
        let https = try MSBHarness.run(["create", "--name", "fu-d", "--no-start", "--image", reference, "--pull", "always"], env: env)
        #expect(https.status != 0 && !https.stderr.contains("is stored already"))
        #expect(try MSBHarness.run(["ls", "-q"], env: env).out == "fu-a\nfu-b\nfu-c\n")
    }

    /// The SDK's default image on a server that has none: built on first use. A start the
    /// build outlasts is answered "retry in a minute" (the SDK raises); a retry, as an SDK
    /// user would, succeeds once the build is done.
    @Test func aFreshServerServesThePythonSDKsDefaultWithoutABuild() throws {
        let python = MSBHarness.repoRoot + "/.build/sdk-venv/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "scripts/test.sh installs the SDK into .build/sdk-venv")
        let server = try TestServer(name: "srv-first-use", options: ["--dev"], sharedImages: false)
        defer { server.stop() }
        let name = MSBHarness.uniqueName("sdkfirst")
        var report: [String: Any] = [:]
        var refusals: [String] = []
        let deadline = Date().addingTimeInterval(900)
        while report.isEmpty && Date() < deadline {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [MSBHarness.repoRoot + "/Tests/IntegrationTests/Fixtures/sdk_client.py", name]
            process.environment = ["PATH": "/usr/bin:/bin", "MSB_SERVER_URL": server.url, "HOME": MSBHarness.home]
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 0 {
                report = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            } else {
                // Only the retry-able answer may fail a start; anything else ends the test.
                try #require(errors.contains("image python is being built on first use; retry in a minute"), "\(errors)")
                refusals.append(errors)
                sleep(10)
            }
        }
        defer { _ = try? server.rpc("sandbox.remove", ["sandbox": name, "force": true], key: nil) }
        #expect(report["first"] as? String == "hi")
        #expect(report["second"] as? String == "42")
        #expect(refusals.count <= 8)
        let log = String(decoding: FileManager.default.contents(atPath: server.home + "/test-server.log") ?? Data(), as: UTF8.self)
        #expect(log.contains("msb server: building image python on first use (this takes a few minutes)"))
        // Built once, however many starts asked.
        #expect(log.components(separatedBy: "building image python on first use").count == 2)
        let images = try MSBHarness.run(["image", "ls", "-q"], env: ["MSB_HOME": server.home, "MSB_IMAGES": server.home + "/images"])
        #expect(images.out == "base\npython\n")
    }
}
