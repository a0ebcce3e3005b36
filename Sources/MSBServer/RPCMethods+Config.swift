import Foundation
import MSBClient
import MSBCore

extension RPCDispatcher {
    /// The sandbox config of `sandbox.start` / `sandbox.create`, checked against what this
    /// server lets remote clients ask for.
    func sandboxConfig(name: String, _ params: RPC.SandboxConfigParams?) throws(MSBError) -> SandboxConfig {
        var config = SandboxConfig(name: name)
        guard let params else {
            config.network = try networkPolicy(nil)
            return config
        }
        if let image = params.image, !image.isEmpty { config.image = image }
        if let memory = try RPCParams.wholeNumber(params.memory, "memory", in: 64...(1024 * 1024)) { config.memoryMiB = memory }
        if let cpus = try RPCParams.wholeNumber(params.cpus, "cpus", in: 1...64) { config.cpus = cpus }
        if let envs = params.envs {
            for item in envs { try InputParsing.validateEnvironment(item) }
            config.environment = envs
        }
        if let workdir = params.workdir, !workdir.isEmpty {
            guard workdir.hasPrefix("/") else { throw MSBError(.invalidArgument, "invalid params: 'workdir' must be an absolute path") }
            config.workingDirectory = workdir
        }
        if let user = params.user, !user.isEmpty { config.user = user }
        if let max = try RPCParams.wholeNumber(params.max_duration_ms, "max_duration_ms", in: 1...Int(UInt32.max) * 1000) {
            config.maxDurationMilliseconds = UInt64(max)
        }
        if let accelerator = params.accelerator { config.accelerator = try AcceleratorChoice.parse(accelerator) }
        if params.cold == true { config.coldBoot = true }
        if let snapshot = params.snapshot {
            // The snapshot's memory holds a kernel sized for its image, memory and cpus.
            let conflicting = [("image", params.image != nil), ("memory", params.memory != nil), ("cpus", params.cpus != nil)]
                .filter { $0.1 }.map { "'\($0.0)'" }
            guard conflicting.isEmpty else {
                throw MSBError(.invalidArgument, "invalid params: 'snapshot' takes the image, memory and cpus of the snapshot; drop "
                               + conflicting.joined(separator: ", "))
            }
            config.snapshot = try RPCParams.snapshot(snapshot)
        }
        try checkVolumes(params.volumes ?? [])
        config.network = try networkPolicy(params)
        // `depends_on`, `shell`, `scripts` and `exec` describe how microsandbox's own tools run
        // a project; a sandbox here has no start script, so they are accepted and not used.
        return config
    }

    /// `HOST:GUEST` mounts: a host path outside the allow-list is refused (403) before anything else.
    private func checkVolumes(_ volumes: [String]) throws(MSBError) {
        for volume in volumes {
            let parts = volume.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0].hasPrefix("/"), parts[1].hasPrefix("/") else {
                throw MSBError(.invalidArgument, "invalid params: volume '\(volume)' must be HOST_PATH:GUEST_PATH with absolute paths")
            }
            let hostPath = URL(fileURLWithPath: parts[0]).standardizedFileURL.path
            let allowed = configuration.volumeAllowList.contains { root in hostPath == root || hostPath.hasPrefix(root.hasSuffix("/") ? root : root + "/") }
            guard allowed else {
                throw MSBError(.accessDenied, "mounting host path \(hostPath) is not allowed on this server",
                               hint: "the server's operator can allow it with 'msb server start --allow-volume DIR'")
            }
            throw MSBError(.unsupported, "volume \(volume) is allowed, but msb sandboxes cannot share host directories yet")
        }
    }
}
