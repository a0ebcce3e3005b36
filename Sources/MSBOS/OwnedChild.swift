/// A child process its owner reaps exactly once (passt, virtiofsd): the exit status is
/// kept, so later polls, and a terminate after the child ended, answer from it rather
/// than touch a pid the kernel may have handed to another process.
package final class OwnedChild {
    package let process: ChildProcess
    private var reaped: WaitStatus?

    package init(_ process: ChildProcess) { self.process = process }

    /// Its status if it has ended; never blocks.
    package func pollExit() -> WaitStatus? {
        if let reaped { return reaped }
        reaped = process.poll()
        return reaped
    }

    /// SIGTERM, then SIGKILL after `graceSeconds`; reaped either way.
    package func terminate(graceSeconds: Double) {
        guard pollExit() == nil else { return }
        reaped = process.terminate(graceSeconds: graceSeconds)
    }
}
