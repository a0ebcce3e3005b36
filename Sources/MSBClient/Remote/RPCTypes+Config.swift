import MSBCore

extension RPC {
    /// The `config` of `sandbox.start` and `sandbox.create` (the SDKs' names).
    /// Numbers are read as JSON numbers (some SDKs send `cpus` as 1.0); the server checks
    /// that they are whole and in range.
    package struct SandboxConfigParams: Codable, Sendable {
        package var image: String?
        /// MiB.
        package var memory: Double?
        package var cpus: Double?
        package var envs: [String]?
        package var workdir: String?
        package var user: String?
        package var max_duration_ms: Double?
        package var accelerator: String?
        /// `HOSTDIR:GUESTDIR[:ro]` (a host path the server's `--allow-volume` allows) or
        /// `NAME:GUESTDIR[:ro]` (a named volume of the namespace, made if it does not exist).
        package var volumes: [String]?
        /// `[HOSTIP:]HOSTPORT:GUESTPORT[/tcp|udp]` (the SDKs send `"8080:80"`); allowed only
        /// under the server's `--allow-port` rules.
        package var ports: [String]?
        /// msb's extensions for the network (`create -p/--no-net/--allow-host/--net-*`):
        /// `network` false: none, only lo; true, or any of the other network keys: a network;
        /// absent with none of them: the server's `--default-net`.
        package var network: Bool?
        package var allow_host: Bool?
        /// `CIDR[:PORT]` rules.
        package var net_allow: [String]?
        package var net_deny: [String]?
        package var net_unrestricted: Bool?
        /// msb's extension: boot the kernel instead of resuming a start template.
        package var cold: Bool?
        /// msb's extension: start from this snapshot of the namespace (`create --from`); its
        /// image, memory and cpus are the sandbox's, so those three are not sent with it.
        package var snapshot: String?
        /// msb's extension: the guest's hostname (`create --hostname`); absent: the sandbox's name.
        package var hostname: String?
        /// Seconds (fractions allowed): the sandbox stops once no client was served for this long.
        package var idle_timeout: Double?
        /// Sandboxes of the namespace started first, whenever this one starts.
        package var depends_on: [String]?
        /// The shell `msb shell` opens (an absolute guest path).
        package var shell: String?
        /// Named commands: `msb exec NAME --script S`, and `/.msb/scripts/S` in the guest.
        package var scripts: [String: String]?
        /// Started in the background as `/bin/sh -c EXEC` at every start; output in `sandbox.logs`.
        package var exec: String?
        /// `missing` (default), `always` or `never`: when the server pulls or builds the image
        /// (`pull` is read the same). Used by this start only; not kept with the sandbox.
        package var pull_policy: String?
        package var pull: String?
        /// Registry credentials for this start's pull only: never kept, never logged.
        package var registry_auth: RegistryAuth?
        /// msb's extension: pull over plain HTTP (the server's `--allow-insecure-registries`).
        package var insecure_registry: Bool?

        package init() {}

        package init(_ config: SandboxConfig) {
            if let snapshot = config.snapshot {
                self.snapshot = snapshot
            } else {
                image = config.image
                memory = Double(config.memoryMiB)
                cpus = Double(config.cpus)
            }
            envs = config.environment
            workdir = config.workingDirectory
            user = config.user
            max_duration_ms = config.maxDurationMilliseconds.map(Double.init)
            accelerator = config.accelerator.rawValue
            cold = config.coldBoot
            if let mounts = config.volumes, !mounts.isEmpty { volumes = mounts.map(\.specification) }
            hostname = config.hostname
            depends_on = config.dependsOn
            idle_timeout = config.idleTimeoutMilliseconds.map { Double($0) / 1000 }
            shell = config.shell
            scripts = config.scripts
            exec = config.startCommand
            setNetwork(config.network)
        }

        /// The default policy is left unsaid, so the server's `--default-net` decides for a
        /// create that gave no network option; anything else is sent whole.
        private mutating func setNetwork(_ policy: NetworkPolicy?) {
            guard let policy else {
                network = false
                return
            }
            guard policy != NetworkPolicy() else { return }
            network = true
            if !policy.publishedPorts.isEmpty { ports = policy.publishedPorts.map(\.specification) }
            if policy.allowHost { allow_host = true }
            if !policy.allowed.isEmpty { net_allow = policy.allowed.map(\.description) }
            if !policy.denied.isEmpty { net_deny = policy.denied.map(\.description) }
            if policy.unrestricted { net_unrestricted = true }
        }
    }
}

extension RPC {
    /// `registry_auth`: `{"username": …, "password": …}` (the builder API's shape) or a
    /// `"user:password"` string (what `MSB_REGISTRY_AUTH` holds).
    package enum RegistryAuth: Codable, Sendable, Equatable {
        case text(String)
        case basic(username: String, password: String)

        private enum Keys: String, CodingKey { case username, password }

        package init(from decoder: any Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) {
                self = .text(text)
                return
            }
            let object = try decoder.container(keyedBy: Keys.self)
            self = .basic(username: try object.decode(String.self, forKey: .username), password: try object.decode(String.self, forKey: .password))
        }

        package func encode(to encoder: any Encoder) throws {
            switch self {
            case .text(let text):
                var single = encoder.singleValueContainer()
                try single.encode(text)
            case .basic(let username, let password):
                var object = encoder.container(keyedBy: Keys.self)
                try object.encode(username, forKey: .username)
                try object.encode(password, forKey: .password)
            }
        }

        /// `user:password`, as the registry client takes it; a user name with `:` is refused
        /// (basic authentication cannot carry it).
        package func credentials() throws(MSBError) -> String {
            let bad = MSBError(.invalidArgument, "invalid params: 'registry_auth' must be \"user:password\" or {\"username\", \"password\"}")
            switch self {
            case .text(let text):
                guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else { throw bad }
                return text
            case .basic(let username, let password):
                guard !username.isEmpty, !username.contains(":") else { throw bad }
                return username + ":" + password
            }
        }
    }
}
