import MSBClient
import MSBCore

extension RPCDispatcher {
    /// `sandbox.start` of a stopped sandbox with a `config`: the SDKs send their config on
    /// every start, so what can change between two boots is applied to the saved config
    /// before it boots. Applied when present: `memory`, `cpus` (not for a sandbox made from a
    /// snapshot, whose memory holds a kernel of its size), `envs` (after the image's, as at
    /// create), `workdir`, `user`, `max_duration_ms`, `idle_timeout`, `hostname`,
    /// `depends_on`, `shell`, `scripts`, `exec` (an empty one clears it), and the network (`ports`, `network`, `allow_host`, `net_*`, all together,
    /// under the same allow-lists as a create). Not applied: `image`, `snapshot` and
    /// `volumes` (the disk is made from them; `replace: true` makes the sandbox afresh),
    /// `accelerator` and `cold`. A running sandbox is left as it is.
    func applyStartChanges(_ params: RPC.SandboxConfigParams, to existing: SandboxInfo,
                           _ backend: LocalBackend) throws(MSBError) -> SandboxInfo {
        // Validated exactly as a create's; image, snapshot and volumes are not used.
        var checked = params
        checked.snapshot = nil
        checked.volumes = nil
        let requested = try sandboxConfig(name: existing.name, checked)
        let isFork = existing.config.snapshot != nil
        let networkGiven = params.ports != nil || params.network != nil || params.allow_host != nil || params.net_allow != nil
            || params.net_deny != nil || params.net_unrestricted != nil
        return try backend.reconfigure(existing.name) { (config: inout SandboxConfig) throws(MSBError) in
            if params.memory != nil && !isFork { config.memoryMiB = requested.memoryMiB }
            if params.cpus != nil && !isFork { config.cpus = requested.cpus }
            if params.envs != nil { config.environment = backend.baseEnvironment(of: config) + requested.environment }
            if let workdir = params.workdir, !workdir.isEmpty { config.workingDirectory = requested.workingDirectory }
            if let user = params.user, !user.isEmpty { config.user = requested.user }
            if params.max_duration_ms != nil { config.maxDurationMilliseconds = requested.maxDurationMilliseconds }
            if params.idle_timeout != nil { config.idleTimeoutMilliseconds = requested.idleTimeoutMilliseconds }
            if params.hostname != nil { config.hostname = requested.hostname }
            if params.depends_on != nil { config.dependsOn = requested.dependsOn }
            if params.shell != nil { config.shell = requested.shell }
            if params.scripts != nil { config.scripts = requested.scripts }
            if params.exec != nil { config.startCommand = requested.startCommand }
            if networkGiven { config.network = requested.network }
        }
    }
}
