import Foundation
import Glibc
import MSBCore
import MSBOS
import MSBVMM
import Testing

/// Start templates: which inputs name a template, when a saved one may be used, and how the
/// store installs, removes and cleans up after builders.
@Suite struct TemplateStoreTests {
    /// A scratch directory with stand-ins for the kernel, initramfs and QEMU binary.
    final class Scratch {
        let directory = NSTemporaryDirectory() + "templates-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var store: TemplateStore { TemplateStore(directory: directory + "/templates") }

        init() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for name in ["vmlinuz", "initramfs", "qemu"] { try write(name, "first") }
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func path(_ name: String) -> String { directory + "/" + name }

        func write(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)))
        }

        func identity(_ name: String) throws -> FileIdentity {
            try #require(FileIdentity(path: path(name)))
        }

        func inputs(memoryMiB: Int = 256, cpus: Int = 1, rootDiskBytes: Int64? = 1 << 30) throws -> TemplateInputs {
            TemplateInputs(accelerator: .tcg, cpus: cpus, memoryMiB: memoryMiB, rootDiskBytes: rootDiskBytes,
                           kernel: try identity("vmlinuz"), initramfs: try identity("initramfs"), qemu: try identity("qemu"), network: true)
        }

        /// A complete template for `inputs`, built in a work directory and installed.
        @discardableResult
        func installTemplate(_ inputs: TemplateInputs, marker: String = "") throws -> Template {
            let work = try store.makeWorkDirectory()
            for name in ["memory.ram", "state.bin", "marker-" + marker] {
                #expect(FileManager.default.createFile(atPath: work + "/" + name, contents: Data("x".utf8)))
            }
            return try store.install(work, inputs: inputs)
        }
    }

    /// What the first builder's thread saw (read after it signalled `finished`).
    final class ResultBox: @unchecked Sendable {
        var value: Int?
    }

    /// Sets a path's access and modification time to `secondsAgo` in the past.
    static func age(_ path: String, secondsAgo: Int) {
        let then = time(nil) - secondsAgo
        var times = [timeval(tv_sec: then, tv_usec: 0), timeval(tv_sec: then, tv_usec: 0)]
        #expect(utimes(path, &times) == 0, "utimes \(path)")
    }

    @Test func theKeyIsStableForEqualInputsAndChangesWithEveryField() throws {
        let scratch = try Scratch()
        let base = try scratch.inputs()
        #expect(base.key == (try scratch.inputs()).key)
        #expect(base.key.count == 16 && base.key.allSatisfy(\.isHexDigit))

        var variants: [String: TemplateInputs] = [
            "memory": try scratch.inputs(memoryMiB: 512),
            "cpus": try scratch.inputs(cpus: 2),
            "disk size": try scratch.inputs(rootDiskBytes: 2 << 30),
            "no disk": try scratch.inputs(rootDiskBytes: nil),
        ]
        var kvm = base
        kvm.accelerator = Accelerator.kvm.rawValue
        variants["accelerator"] = kvm
        var layout = base
        layout.layout += 1
        variants["layout"] = layout

        // A rebuilt file: same path, same size, a new modification time.
        try scratch.write("vmlinuz", "other")
        Self.age(scratch.path("vmlinuz"), secondsAgo: 3600)
        let rebuiltKernel = try scratch.inputs()
        #expect(rebuiltKernel.kernel.path == base.kernel.path)
        #expect(rebuiltKernel.kernel.modifiedNanoseconds != base.kernel.modifiedNanoseconds)
        variants["kernel"] = rebuiltKernel
        // A replaced file (a new inode), as a package upgrade leaves it.
        try FileManager.default.removeItem(atPath: scratch.path("qemu"))
        try scratch.write("qemu", "second")
        var upgradedQEMU = base
        upgradedQEMU.qemu = try scratch.identity("qemu")
        variants["qemu"] = upgradedQEMU

        for (field, inputs) in variants {
            #expect(inputs != base, "\(field)")
            #expect(inputs.key != base.key, "a change of \(field) kept the key")
        }
        #expect(Set(variants.values.map(\.key)).count == variants.count)
    }

    @Test func aMissingFileHasNoIdentity() throws {
        let scratch = try Scratch()
        #expect(FileIdentity(path: scratch.path("absent")) == nil)
        let kernel = try scratch.identity("vmlinuz")
        #expect(kernel.path == scratch.path("vmlinuz"))
        #expect(kernel.sizeBytes == 5)
    }

    @Test func lookupFindsNothingBeforeAnInstall() throws {
        let scratch = try Scratch()
        #expect(scratch.store.lookup(try scratch.inputs()) == nil)
        #expect(scratch.store.all().isEmpty)
    }

    @Test func lookupFindsAnInstalledTemplateForTheSameInputsOnly() throws {
        let scratch = try Scratch()
        let inputs = try scratch.inputs()
        let installed = try scratch.installTemplate(inputs)
        #expect(installed.directory == scratch.store.directory + "/" + inputs.key)
        let found = try #require(scratch.store.lookup(inputs))
        #expect(found.key == inputs.key)
        #expect(found.ramPath == installed.directory + "/memory.ram")
        #expect(found.statePath == installed.directory + "/state.bin")
        #expect(scratch.store.lookup(try scratch.inputs(memoryMiB: 512)) == nil)
    }

    @Test func lookupRefusesATemplateThatRecordsOtherInputs() throws {
        let scratch = try Scratch()
        let inputs = try scratch.inputs()
        let installed = try scratch.installTemplate(inputs)
        // The directory name matches, the recorded inputs do not (a key collision, or a
        // directory tampered with): the full inputs decide.
        var other = inputs
        other.memoryMiB = 4096
        try JSONEncoder().encode(other).write(to: URL(fileURLWithPath: installed.directory + "/template.json"))
        #expect(scratch.store.lookup(inputs) == nil)
        // Unreadable inputs are no match either.
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: installed.directory + "/template.json"))
        #expect(scratch.store.lookup(inputs) == nil)
        #expect(scratch.store.all().map(\.key) == [inputs.key])
        #expect(scratch.store.all().first?.inputs == nil)
    }

    @Test(arguments: ["state.bin", "memory.ram", "template.json"])
    func lookupRefusesATemplateMissingAFile(_ file: String) throws {
        let scratch = try Scratch()
        let inputs = try scratch.inputs()
        let installed = try scratch.installTemplate(inputs)
        try FileManager.default.removeItem(atPath: installed.directory + "/" + file)
        #expect(scratch.store.lookup(inputs) == nil)
    }

    @Test func installReplacesAnExistingTemplate() throws {
        let scratch = try Scratch()
        let inputs = try scratch.inputs()
        let first = try scratch.installTemplate(inputs, marker: "first")
        let work = try scratch.store.makeWorkDirectory()
        #expect(work.hasPrefix(scratch.store.directory + "/.tmp-"))
        for name in ["memory.ram", "state.bin", "marker-second"] {
            #expect(FileManager.default.createFile(atPath: work + "/" + name, contents: Data("y".utf8)))
        }
        let second = try scratch.store.install(work, inputs: inputs)
        #expect(second.directory == first.directory)
        #expect(!FileManager.default.fileExists(atPath: work), "the work directory was moved, not copied")
        let files = try FileManager.default.contentsOfDirectory(atPath: second.directory).sorted()
        #expect(files == ["marker-second", "memory.ram", "state.bin", "template.json"])
        // Nothing of the old one is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.store.directory).filter { !$0.hasSuffix(".lock") }
            == [inputs.key])
        #expect(scratch.store.lookup(inputs) != nil)
    }

    @Test func removeMakesLookupFindNothing() throws {
        let scratch = try Scratch()
        let inputs = try scratch.inputs()
        let installed = try scratch.installTemplate(inputs)
        scratch.store.remove(key: inputs.key)
        #expect(scratch.store.lookup(inputs) == nil)
        #expect(!FileManager.default.fileExists(atPath: installed.directory))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.store.directory).isEmpty)
        // Removing what is not there is no error.
        scratch.store.remove(key: inputs.key)
    }

    @Test func aSecondBuilderWaitsForTheLockAndTimesOut() throws {
        let scratch = try Scratch()
        let store = scratch.store
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let firstResult = ResultBox()
        Thread {
            firstResult.value = try? store.withBuildLock(key: "k", timeoutSeconds: 10) { () throws(MSBError) -> Int in
                held.signal()
                release.wait()
                return 7
            }
            finished.signal()
        }.start()
        #expect(held.wait(timeout: .now() + 10) == .success)

        let started = MonotonicClock.now()
        var thrown: MSBError?
        do {
            try store.withBuildLock(key: "k", timeoutSeconds: 1) { () throws(MSBError) -> Void in
                Issue.record("the second builder got the lock while the first held it")
            }
        } catch {
            thrown = error
        }
        let waited = MonotonicClock.now() - started
        #expect(thrown?.code == .timeout)
        #expect(thrown?.message == "another msb has been building this template for over 1s")
        #expect(waited >= 0.9 && waited < 5, "waited \(waited)s")

        // Another key is not blocked by it.
        #expect(try store.withBuildLock(key: "other", timeoutSeconds: 1) { () throws(MSBError) -> String in "free" } == "free")

        // Once the first builder is done, the lock is free again.
        release.signal()
        #expect(finished.wait(timeout: .now() + 10) == .success)
        #expect(firstResult.value == 7)
        #expect(try store.withBuildLock(key: "k", timeoutSeconds: 1) { () throws(MSBError) -> Int in 1 } == 1)
    }

    @Test func removeStaleKeepsCurrentTemplatesAndTheLockOfABuildInProgress() throws {
        let scratch = try Scratch()
        let store = scratch.store
        let current = try scratch.inputs()
        let stale = try scratch.inputs(memoryMiB: 512)
        let building = try scratch.inputs(memoryMiB: 1024)
        for inputs in [current, stale, building] {
            try scratch.installTemplate(inputs)
            try store.withBuildLock(key: inputs.key, timeoutSeconds: 1) { () throws(MSBError) in }
        }
        let unreadable = store.directory + "/0123456789abcdef"
        try FileManager.default.createDirectory(atPath: unreadable, withIntermediateDirectories: false)

        let removed = try store.withBuildLock(key: building.key, timeoutSeconds: 1) { () throws(MSBError) -> Int in
            store.removeStale { $0 == current }
        }
        #expect(removed == 3)
        #expect(store.lookup(current) != nil)
        #expect(store.lookup(stale) == nil && store.lookup(building) == nil)
        #expect(!FileManager.default.fileExists(atPath: unreadable))
        let names = try FileManager.default.contentsOfDirectory(atPath: store.directory).sorted()
        #expect(names == [current.key, current.key + ".lock", building.key + ".lock"].sorted())
    }

    @Test func removeLeftoversRemovesOnlyOldWorkDirectories() throws {
        let scratch = try Scratch()
        let store = scratch.store
        let inputs = try scratch.inputs()
        let template = try scratch.installTemplate(inputs)
        let oldWork = try store.makeWorkDirectory()
        let freshWork = try store.makeWorkDirectory()
        let oldDoomed = store.directory + "/.doomed-abc-1"
        try FileManager.default.createDirectory(atPath: oldDoomed, withIntermediateDirectories: false)
        try store.withBuildLock(key: inputs.key, timeoutSeconds: 1) { () throws(MSBError) in }
        let lock = store.directory + "/" + inputs.key + ".lock"
        for path in [oldWork, oldDoomed, template.directory, lock] { Self.age(path, secondsAgo: 3600) }

        store.removeLeftovers(olderThanSeconds: 600)

        #expect(!FileManager.default.fileExists(atPath: oldWork))
        #expect(!FileManager.default.fileExists(atPath: oldDoomed))
        #expect(FileManager.default.fileExists(atPath: freshWork), "a build in progress keeps its work directory")
        #expect(FileManager.default.fileExists(atPath: lock))
        #expect(store.lookup(inputs) != nil, "an old template is not a leftover")
    }
}
