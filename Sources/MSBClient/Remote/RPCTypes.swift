import MSBCore

/// One JSON-RPC method of `msb server`: its name and the types of its params and result.
/// Both sides use these: the remote backend encodes `Params` and decodes `Result`; the
/// server reads `Params` (through `RPCParams`, whose refusals name the bad parameter) and
/// encodes `Result`. The SDK contract's five methods keep exactly their shapes (docs/REMOTE.md).
package protocol RPCMethodType {
    associatedtype Params: Codable & Sendable
    associatedtype Result: Codable & Sendable
    static var name: String { get }
}

/// The methods and their types. JSON names follow the wire (snake_case where it is).
package enum RPC {
    // MARK: Shared shapes

    /// A sandbox in a namespace (`default` when nil), with the `force` of stop and remove.
    package struct SandboxParams: Codable, Sendable {
        package var sandbox: String
        package var namespace: String?
        package var force: Bool?
        package init(sandbox: String, namespace: String?, force: Bool? = nil) {
            self.sandbox = sandbox
            self.namespace = namespace
            self.force = force
        }
    }

    /// What a call that acts on a namespace says about it.
    package struct NamespaceParams: Codable, Sendable {
        package var namespace: String?
        package init(namespace: String?) { self.namespace = namespace }
    }

    /// One line of output: `{"stream": "stdout"|"stderr", "text": ...}`.
    package struct OutputLine: Codable, Sendable, Equatable {
        package var stream: String
        package var text: String
        package init(stream: String, text: String) {
            self.stream = stream
            self.text = text
        }
    }

    package struct SandboxResult: Codable, Sendable {
        package var sandbox: RemoteWire.Sandbox
        package init(_ info: SandboxInfo) { sandbox = RemoteWire.Sandbox(info) }
    }
    package struct SandboxListResult: Codable, Sendable {
        package var sandboxes: [RemoteWire.Sandbox]
        package init(_ infos: [SandboxInfo]) { sandboxes = infos.map(RemoteWire.Sandbox.init) }
    }
    package struct SnapshotResult: Codable, Sendable {
        package var snapshot: RemoteWire.Snapshot
        package init(_ info: SnapshotInfo) { snapshot = RemoteWire.Snapshot(info) }
    }
    package struct ImageResult: Codable, Sendable {
        package var image: ImageInfo
        package init(_ image: ImageInfo) { self.image = image }
    }

    // MARK: The SDK contract

    package enum Start: RPCMethodType {
        package static let name = "sandbox.start"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            /// false: only boot an existing sandbox (the CLI's `start`).
            package var create: Bool?
            package var config: SandboxConfigParams?
            /// msb's extension: remove a sandbox of this name first (stopping it), then create
            /// it afresh from `config`.
            package var replace: Bool?
        }
        /// "Sandbox NAME started successfully" or "... is already running".
        package typealias Result = String
    }

    package enum Stop: RPCMethodType {
        package static let name = "sandbox.stop"
        package typealias Params = SandboxParams
        package typealias Result = String
    }

    /// msb's extensions: stop or continue a sandbox's vCPUs.
    package enum Pause: RPCMethodType {
        package static let name = "sandbox.pause"
        package typealias Params = SandboxParams
        package typealias Result = String
    }

    package enum Resume: RPCMethodType {
        package static let name = "sandbox.resume"
        package typealias Params = SandboxParams
        package typealias Result = String
    }

    package enum CommandRun: RPCMethodType {
        package static let name = "sandbox.command.run"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            package var command: String
            package var args: [String]?
            /// Seconds; the server's default and limit apply.
            package var timeout: Double?
            // Extensions: the CLI's -e, -w and -u.
            package var envs: [String]?
            package var workdir: String?
            package var user: String?
        }
        package struct Result: Codable, Sendable {
            package var command: String
            package var args: [String]
            package var exit_code: Int
            package var success: Bool
            package var output: [OutputLine]
            package init(command: String, args: [String], exitCode: Int, output: [OutputLine]) {
                self.command = command
                self.args = args
                exit_code = exitCode
                success = exitCode == 0
                self.output = output
            }
        }
    }

    package enum ReplRun: RPCMethodType {
        package static let name = "sandbox.repl.run"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            package var language: String
            package var code: String
            package var timeout: Double?
        }
        package struct Result: Codable, Sendable {
            package var status: String
            package var language: String
            package var output: [OutputLine]
            package init(status: String, language: String, output: [OutputLine]) {
                self.status = status
                self.language = language
                self.output = output
            }
        }
    }

    package enum MetricsGet: RPCMethodType {
        package static let name = "sandbox.metrics.get"
        package struct Params: Codable, Sendable {
            package var sandbox: String?
            /// `*` with an all-namespaces key: every namespace.
            package var namespace: String?
            /// Adds status, memory_limit and uptime_seconds.
            package var detail: Bool?
        }
        package struct Result: Codable, Sendable {
            package var sandboxes: [RemoteWire.Metrics]
            package init(sandboxes: [RemoteWire.Metrics]) { self.sandboxes = sandboxes }
        }
    }

    // MARK: msb's extensions

    package enum Create: RPCMethodType {
        package static let name = "sandbox.create"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            package var config: SandboxConfigParams?
            /// false: create without booting.
            package var start: Bool?
            /// Remove a sandbox of this name first (stopping it).
            package var replace: Bool?
        }
        package typealias Result = SandboxResult
    }

    package enum List: RPCMethodType {
        package static let name = "sandbox.list"
        package typealias Params = NamespaceParams
        package typealias Result = SandboxListResult
    }

    package enum Inspect: RPCMethodType {
        package static let name = "sandbox.inspect"
        package typealias Params = SandboxParams
        package typealias Result = SandboxResult
    }

    /// Blocks until the sandbox is not running or `timeout` seconds passed (at most the
    /// server's wait limit: a longer one is cut to it) and returns it as `sandbox.inspect`
    /// does; a status that still runs means the time ran out, and the client asks again.
    package enum Wait: RPCMethodType {
        package static let name = "sandbox.wait"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            /// Seconds, 0 or more; absent: the server's limit.
            package var timeout: Double?
        }
        package typealias Result = SandboxResult
    }

    /// msb's extension (`msb drain`): returns once the sandbox is draining; `sandbox.wait`
    /// waits for its end.
    package enum Drain: RPCMethodType {
        package static let name = "sandbox.drain"
        package struct Params: Codable, Sendable {
            package var sandbox: String
            package var namespace: String?
            /// Seconds after which whatever still runs is stopped; absent or 0: no limit.
            package var timeout: Double?
        }
        package typealias Result = SandboxResult
    }

    package enum Remove: RPCMethodType {
        package static let name = "sandbox.remove"
        package typealias Params = SandboxParams
        package typealias Result = String
    }

    /// Named snapshots of a namespace's sandboxes (`msb snapshot`).
    package enum SnapshotCreate: RPCMethodType {
        package static let name = "sandbox.snapshot.create"
        package struct Params: Codable, Sendable {
            /// The running sandbox to save.
            package var sandbox: String
            package var namespace: String?
            /// The snapshot's name.
            package var snapshot: String
        }
        package typealias Result = SnapshotResult
    }

    package enum SnapshotList: RPCMethodType {
        package static let name = "sandbox.snapshot.list"
        package typealias Params = NamespaceParams
        package struct Result: Codable, Sendable {
            package var snapshots: [RemoteWire.Snapshot]
            package init(_ infos: [SnapshotInfo]) { snapshots = infos.map(RemoteWire.Snapshot.init) }
        }
    }

    package enum SnapshotRemove: RPCMethodType {
        package static let name = "sandbox.snapshot.remove"
        package struct Params: Codable, Sendable {
            package var snapshot: String
            package var namespace: String?
        }
        package typealias Result = String
    }

    package enum ImageList: RPCMethodType {
        package static let name = "image.list"
        package typealias Params = NamespaceParams
        package struct Result: Codable, Sendable {
            package var images: [ImageInfo]
            package init(images: [ImageInfo]) { self.images = images }
        }
    }

    package enum ImagePull: RPCMethodType {
        package static let name = "image.pull"
        package struct Params: Codable, Sendable {
            package var reference: String
            package var namespace: String?
            package var insecure: Bool?
            /// `user:password` for the registry.
            package var credentials: String?
        }
        package typealias Result = ImageResult
    }

    /// An image by name, with the `force` of build and remove.
    package struct ImageNameParams: Codable, Sendable {
        package var name: String
        package var force: Bool?
    }

    package enum ImageBuild: RPCMethodType {
        package static let name = "image.build"
        package typealias Params = ImageNameParams
        package typealias Result = ImageResult
    }

    package enum ImageRemove: RPCMethodType {
        package static let name = "image.remove"
        package typealias Params = ImageNameParams
        package typealias Result = String
    }

    package enum ImagePrune: RPCMethodType {
        package static let name = "image.prune"
        package typealias Params = NamespaceParams
        package struct Result: Codable, Sendable {
            package var removed: Int
            package init(removed: Int) { self.removed = removed }
        }
    }

    package enum ServerInfo: RPCMethodType {
        package static let name = "server.info"
        package typealias Params = NamespaceParams
        package struct Amounts: Codable, Sendable {
            package var sandboxes: Int
            package var memory_mib: Int
            package var cpus: Int
            package init(sandboxes: Int, memory_mib: Int, cpus: Int) {
                self.sandboxes = sandboxes
                self.memory_mib = memory_mib
                self.cpus = cpus
            }
        }
        package struct Result: Codable, Sendable {
            package var version: String
            package var dev: Bool
            package var namespace: String
            package var limits: Amounts
            package var usage: Amounts
            package init(version: String, dev: Bool, namespace: String, limits: Amounts, usage: Amounts) {
                self.version = version
                self.dev = dev
                self.namespace = namespace
                self.limits = limits
                self.usage = usage
            }
        }
    }
}
