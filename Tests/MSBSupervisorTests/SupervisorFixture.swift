import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol
@testable import MSBSupervisor

/// A real `Supervisor` serving a sandbox whose VM is fake and whose agent is scripted by
/// the test; clients reach it through its real control socket.
final class SupervisorFixture: @unchecked Sendable {
    static let name = "fake"
    static let fastTiming = Supervisor.Timing(agentSilenceSeconds: 1, gracefulStopSeconds: 1, channelClosedExitSeconds: 0.5)

    let home: String
    /// The state directory of `home` itself (a server's root when `namespace` is given).
    let rootPaths: MSBPaths
    /// Where the sandbox lives: `home`, or its namespace's directory under it.
    let paths: MSBPaths
    let agent: ScriptedAgent
    let vm = Box<FakeVirtualMachine?>(nil)
    private let exitCode = Box<Int32?>(nil)

    /// With `bootFails`, the supervisor is expected to give up while booting: the fixture
    /// waits for it to exit instead of for its control socket.
    /// `sandbox` shapes the sandbox's config before the supervisor reads it.
    init(timing: Supervisor.Timing = fastTiming, namespace: String? = nil, bootFails: Bool = false,
         configure: (ScriptedAgent) -> Void = { _ in }, sandbox: (inout SandboxConfig) -> Void = { _ in }) throws {
        var template = Array("/tmp/msbt.XXXXXX".utf8CString)
        home = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        let root = MSBPaths(environment: ["MSB_HOME": home, "MSB_ARTIFACTS": home + "/guest", "HOME": home])
        rootPaths = root
        paths = namespace.map { root.namespaced($0) } ?? root
        try FileManager.default.createDirectory(atPath: paths.artifacts, withIntermediateDirectories: true)
        for file in ["vmlinux", "initramfs.cpio"] {
            FileManager.default.createFile(atPath: paths.artifacts + "/" + file, contents: Data())
        }
        try FileManager.default.createDirectory(atPath: paths.sandboxDirectory(Self.name), withIntermediateDirectories: true)
        var config = SandboxConfig(name: Self.name, environment: ["FROM_SANDBOX=1"], accelerator: .tcg)
        sandbox(&config)
        try StateStore(paths: paths).insert(SandboxRecord(config: config, status: .starting, createdAt: Date()))
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw MSBError(.internalError, "socketpair failed")
        }
        agent = ScriptedAgent(fd: pair[1])
        configure(agent)
        agent.start()
        let supervisor = try Supervisor(name: Self.name, paths: paths, readyFd: -1,
                                        manager: FakeVirtualMachineManager(agentFd: pair[0], made: vm), timing: timing)
        let unchecked = UncheckedSupervisor(supervisor: supervisor)
        let exitCode = self.exitCode
        Thread.detachNewThread { exitCode.value = unchecked.supervisor.run() }
        let deadline = MonotonicClock.now() + 10
        if bootFails {
            while exitCode.value == nil {
                guard MonotonicClock.now() < deadline else { throw MSBError(.timeout, "the supervisor did not give up") }
                usleep(10_000)
            }
            return
        }
        // The socket file appears at bind, a moment before listen: wait until it answers.
        while (try? UnixSocket.connect(path: paths.controlSocket(Self.name))).map({ close($0) }) == nil {
            guard MonotonicClock.now() < deadline, exitCode.value == nil else {
                throw MSBError(.timeout, "the supervisor did not start serving")
            }
            usleep(10_000)
        }
    }

    func connect(liveness: SupervisorConnection.Liveness = .standard) throws -> SupervisorConnection {
        SupervisorConnection(fd: try UnixSocket.connect(path: paths.controlSocket(Self.name)), liveness: liveness)
    }

    /// The supervisor's exit code once its loop ended, waiting up to `seconds`.
    func waitForExit(seconds: Double) -> Int32? {
        let deadline = MonotonicClock.now() + seconds
        while exitCode.value == nil && MonotonicClock.now() < deadline { usleep(10_000) }
        return exitCode.value
    }

    func record() throws -> SandboxRecord? { try StateStore(paths: paths).get(Self.name) }

    /// Ends the fake VM and the supervisor, and removes the state directory.
    func tearDown() {
        vm.value?.signal(SIGKILL)
        _ = waitForExit(seconds: 10)
        agent.closeChannel()
        try? FileManager.default.removeItem(atPath: home)
    }
}

/// Runs the exec to its end, collecting its output.
func runCollecting(_ session: ExecSession) throws -> (outcome: ExecOutcome, stdout: String, stderr: String) {
    let out = Box<[UInt8]>([]), err = Box<[UInt8]>([])
    let outcome = try session.run(ExecIO(stdinFd: nil, stdout: { bytes in out.mutate { $0 += bytes } }, stderr: { bytes in err.mutate { $0 += bytes } }))
    return (outcome, String(decoding: out.value, as: UTF8.self), String(decoding: err.value, as: UTF8.self))
}

private struct UncheckedSupervisor: @unchecked Sendable {
    let supervisor: Supervisor
}
