import Foundation
import MSBClient
import MSBCore
import MSBImages
import Testing

/// `--pull` / `pull_policy` without a registry: the policy's decisions, the `never`
/// refusal, and the store's fetch lock. Real pulls and builds: IntegrationTests.
@Suite struct ImageFetchTests {
    let paths = MSBPaths(environment: ["MSB_HOME": NSTemporaryDirectory() + "msb-fetch-\(UUID().uuidString.prefix(8))"])

    @Test func policiesParseAndABadOneNamesTheOption() throws {
        #expect(try PullPolicy.parse("missing") == .missing)
        #expect(try PullPolicy.parse("always") == .always)
        #expect(try PullPolicy.parse("never") == .never)
        #expect(PullPolicy.default == .missing)
        do {
            _ = try PullPolicy.parse("Always")
            Issue.record("accepted")
        } catch {
            #expect(error.code == .invalidArgument && error.message == "invalid --pull 'Always'" && error.hint == "use missing, always or never")
        }
    }

    @Test func whatEachPolicyDoes() {
        typealias A = ImageFetch.Action
        let cases: [(PullPolicy, Bool, Bool, A)] = [
            (.missing, true, false, .useLocal), (.missing, false, false, .pull), (.missing, false, true, .build), (.missing, true, true, .useLocal),
            (.always, true, false, .pull), (.always, false, false, .pull), (.always, false, true, .build),
            // Built images are rebuilt only by `msb image build --force`.
            (.always, true, true, .useLocal),
            (.never, true, false, .useLocal), (.never, false, false, .refuse), (.never, false, true, .refuse), (.never, true, true, .useLocal),
        ]
        for (policy, present, buildable, expected) in cases {
            #expect(ImageFetch.action(policy, present: present, buildable: buildable) == expected, "\(policy) \(present) \(buildable)")
        }
    }

    @Test func neverRefusesClearlyAndTheBaseImageIsAlwaysHere() throws {
        let backend = LocalBackend(paths: paths)
        do {
            try backend.ensureImage("localhost:5000/app:1", ImageFetch(policy: .never))
            Issue.record("no refusal")
        } catch {
            #expect(error.code == .notFound && error.message == "image not found: localhost:5000/app:1")
            #expect(error.hint == "pull it with 'msb pull localhost:5000/app:1' or use --pull missing")
        }
        #expect(backend.imageAction("python", ImageFetch(policy: .missing)) == .build)
        #expect(backend.imageAction("microsandbox/node", ImageFetch(policy: .always)) == .build)
        #expect(backend.imageAction("alpine:3.20", ImageFetch(policy: .missing)) == .pull)
        for policy in PullPolicy.allCases { try backend.ensureImage("base", ImageFetch(policy: policy)) }
    }

    @Test func aBadReferenceIsAUsageErrorBeforeAnythingIsFetched() throws {
        do {
            try LocalBackend(paths: paths).ensureImage("Bad Ref!", ImageFetch())
            Issue.record("accepted")
        } catch {
            #expect(error.code == .invalidArgument && error.message == "invalid image reference 'Bad Ref!'")
        }
        #expect(!FileManager.default.fileExists(atPath: paths.images + "/.lock-Bad Ref!"))
    }

    @Test func theFetchLockLetsOneFetcherInAndTheOthersWaitWithADeadline() throws {
        let store = ImageStore(paths: paths)
        let inside = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let holder = Thread {
            _ = try? store.withFetchLock("python") { () throws(MSBError) in
                inside.signal()
                release.wait()
            }
        }
        holder.start()
        inside.wait()
        do {
            try store.withFetchLock("python", timeoutSeconds: 0.3) { () throws(MSBError) in Issue.record("entered a held lock") }
        } catch {
            #expect(error.code == .timeout && error.message == "another msb has been fetching image python for over 0s")
        }
        // Another name is not held up.
        #expect(try store.withFetchLock("node", timeoutSeconds: 0.3) { () throws(MSBError) in 7 } == 7)
        release.signal()
        #expect(try store.withFetchLock("python", timeoutSeconds: 5) { () throws(MSBError) in true })
    }
}
