/// Time limits the supervisor and its clients agree on.
package enum SupervisorTimeouts {
    /// How long the guest gets to answer its first hello under TCG on a loaded host.
    package static let bootSeconds = 120.0
    /// How long a graceful stop may take before the VMM is terminated.
    package static let gracefulStopSeconds = 20.0
    /// After SIGTERM, how long the VMM gets before SIGKILL.
    package static let vmmTerminateGraceSeconds = 3.0
}
