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
        if let idle = params.idle_timeout {
            // At least a millisecond (0 would read as "none") and at most what max_duration_ms allows.
            guard idle.isFinite, idle >= 0.001, idle <= Double(UInt32.max) else {
                throw RPCParams.invalid("idle_timeout", "a number of seconds from 0.001 to \(UInt32.max)")
            }
            config.idleTimeoutMilliseconds = UInt64((idle * 1000).rounded(.up))
        }
        if let accelerator = params.accelerator { config.accelerator = try AcceleratorChoice.parse(accelerator) }
        if params.cold == true { config.coldBoot = true }
        if let hostname = params.hostname {
            try InputParsing.validateHostname(hostname)
            config.hostname = hostname
        }
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
        if let dependencies = params.depends_on, !dependencies.isEmpty {
            for dependency in dependencies { try InputParsing.validateName(dependency) }
            guard !dependencies.contains(name) else { throw MSBError(.invalidArgument, "sandbox \(name) cannot depend on itself") }
            config.dependsOn = dependencies.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
        }
        config.volumes = try volumeMounts(params.volumes, snapshot: config.snapshot != nil)
        config.network = try networkPolicy(params)
        try applyStartCommands(params, to: &config)
        return config
    }

    /// `shell`, `scripts` and `exec`, checked as the CLI's `--shell`, `--script`,
    /// `--start-command` (names become guest paths, texts go to the guest). An empty
    /// string or object means none, so a `sandbox.start` can clear them.
    private func applyStartCommands(_ params: RPC.SandboxConfigParams, to config: inout SandboxConfig) throws(MSBError) {
        if let shell = params.shell, !shell.isEmpty {
            try InputParsing.validateShellPath(shell)
            config.shell = shell
        }
        if let scripts = params.scripts, !scripts.isEmpty {
            try InputParsing.validateScripts(scripts)
            config.scripts = scripts
        }
        if let command = params.exec, !command.isEmpty {
            try InputParsing.validateCommandText(command, what: "'exec'")
            config.startCommand = command
        }
    }
}
