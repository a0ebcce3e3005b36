import Foundation
import Glibc
import MSBCore
import MSBOS
import MSBVMM

/// A VMM whose "guest" is the test: the agent channel is one end of a socketpair, the
/// other end is driven by a `ScriptedAgent`. The VM "exits" when it is signalled.
final class FakeVirtualMachine: VirtualMachineInstance, @unchecked Sendable {
    let configuration: VirtualMachineConfiguration
    var process: ProcessIdentity? { nil }
    private let agentFd: Int32
    private let lock = NSLock()
    private var exit: VirtualMachineExit?
    /// Signals the supervisor sent, in order.
    private(set) var signalsReceived: [Int32] = []

    init(configuration: VirtualMachineConfiguration, agentFd: Int32) {
        self.configuration = configuration
        self.agentFd = agentFd
    }

    func start() throws(MSBError) {}
    func dialAgent(timeoutSeconds: Double) throws(MSBError) -> Int32 { agentFd }

    func terminate(graceSeconds: Double) { end(VirtualMachineExit(exitCode: nil, signal: SIGKILL)) }

    func signal(_ signo: Int32) {
        lock.withLock { signalsReceived.append(signo) }
        end(VirtualMachineExit(exitCode: nil, signal: signo))
    }

    /// The guest powered off by itself.
    func powerOff() { end(VirtualMachineExit(exitCode: 0, signal: nil)) }

    private func end(_ how: VirtualMachineExit) {
        lock.withLock { if exit == nil { exit = how } }
    }

    func pollExit() -> VirtualMachineExit? { lock.withLock { exit } }
    var signals: [Int32] { lock.withLock { signalsReceived } }
}

struct FakeVirtualMachineManager: VirtualMachineManager, @unchecked Sendable {
    let name = "fake"
    let agentFd: Int32
    let made: Box<FakeVirtualMachine?>

    func makeInstance(_ configuration: VirtualMachineConfiguration) throws(MSBError) -> any VirtualMachineInstance {
        let vm = FakeVirtualMachine(configuration: configuration, agentFd: agentFd)
        made.value = vm
        return vm
    }
}

final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    /// A read-modify-write under the lock (`value[k] = v` from two threads would lose one).
    func mutate(_ change: (inout T) -> Void) { lock.withLock { change(&stored) } }
}
