// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "msb",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "msb", targets: ["msb"]),
        .executable(name: "msb-agent", targets: ["msb-agent"]),
    ],
    dependencies: [
        // The HTTP server of `msb server` (HTTP/1.1 with a raw upgrade for streamed execs).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // HMAC-SHA256 for API keys (signed tokens) and a secure random server secret.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        // The one HTTP client (registries, msb server), TLS against the system CA store.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // C helpers: fork/exec with setsid, pdeathsig and exec-error reporting, rdtsc, ioctls.
        // Swift cannot call C variadics (ioctl, prctl, syscall), so they live here.
        .target(name: "CMSBSys"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // libedit for the REPLs; a dependency of the CLI only, never of the static agent.
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        // libarchive: tar/pax/GNU reading with gzip and zstd in process, tar writing.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        // The OS layer: spawning and reaping children, fd I/O, unix sockets, signal pipes,
        // process identities. Glibc only, so the static agent links it too.
        .target(name: "MSBOS", dependencies: ["CMSBSys"]),
        // Host <-> guest wire protocol: framing and messages. Glibc only, like MSBOS.
        .target(name: "MSBProtocol", dependencies: ["MSBOS"]),
        // Guest agent: PID 1 in the microVM, linked statically.
        .executableTarget(
            name: "msb-agent",
            dependencies: ["MSBProtocol", "MSBOS", "CMSBSys"],
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),
        // What every host process shares: the error type, paths, the sandbox model, input
        // parsing and the SQLite state store.
        .target(name: "MSBCore", dependencies: ["MSBOS", "CSQLite"]),
        // The VMM layer: the VirtualMachineManager protocol, QEMU, accelerator choice, guest artifacts.
        .target(name: "MSBVMM", dependencies: ["MSBCore", "MSBOS"]),
        // A sandbox's network on the host: its passt process, the nftables filter on it,
        // and the published ports' checks. Used by the supervisor.
        .target(name: "MSBNetwork", dependencies: ["MSBCore", "MSBOS"]),
        // A sandbox's volumes on the host: one virtiofsd per shared directory. Used by the supervisor.
        .target(name: "MSBVolumes", dependencies: ["MSBCore", "MSBOS"]),
        // msb's one HTTP stack on SwiftNIO: AsyncHTTPClient calls, and the client side of
        // upgraded (attach) streams; the glue handler the server splices with.
        .target(
            name: "MSBHTTP",
            dependencies: [
                "MSBOS",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Archives through libarchive: a reader and a writer with typed entries and limits, and the
        // rules for hostile archives: image layers (LayerExtractor) and `msb cp` (CopyExtractor).
        .target(name: "MSBArchive", dependencies: ["CArchive", "MSBCore"]),
        // Images: the store, registry pulls, the layer applier, builds, root disks.
        .target(
            name: "MSBImages",
            dependencies: ["MSBArchive", "MSBCore", "MSBOS", "MSBHTTP", .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The per-sandbox supervisor daemon (`msb _supervise NAME`): owns the VMM and the agent channel.
        .target(name: "MSBSupervisor", dependencies: ["MSBCore", "MSBVMM", "MSBNetwork", "MSBVolumes", "MSBProtocol", "MSBOS"]),
        // The client side: the SandboxBackend protocol, the local and remote backends, the
        // typed supervisor connection. The CLI and the server sit on it.
        .target(
            name: "MSBClient",
            dependencies: ["MSBCore", "MSBVMM", "MSBNetwork", "MSBImages", "MSBProtocol", "MSBOS", "MSBHTTP", .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        // `msb server`: JSON-RPC over HTTP in front of per-namespace local backends.
        .target(
            name: "MSBServer",
            dependencies: [
                "MSBClient", "MSBCore", "MSBVMM", "MSBProtocol", "MSBOS", "MSBHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Command table, argument parser and one file per subcommand.
        .target(
            name: "MSBCommands",
            dependencies: ["MSBArchive", "MSBClient", "MSBCore", "MSBServer", "MSBOS", "MSBHTTP", "CEditLine", .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        // The executable: the CLI, or the supervisor when started as `msb _supervise NAME`.
        .executableTarget(name: "msb", dependencies: ["MSBCommands", "MSBSupervisor"]),
        // libFuzzer targets for the parsers that read hostile input (docs/FUZZING.md). A target
        // of this package, because `package` symbols are invisible to any other package.
        // `swift build` makes it a plain replay tool (`msb-fuzz TARGET FILE...`);
        // scripts/fuzz.sh builds it again into .build/fuzz with `-sanitize=fuzzer -DMSB_FUZZ`,
        // where libFuzzer provides `main` and every Swift module is coverage-instrumented.
        .executableTarget(
            name: "msb-fuzz",
            dependencies: ["MSBProtocol", "MSBCore", "MSBImages", "MSBArchive", "MSBClient", "MSBServer", "MSBCommands", "MSBNetwork"],
            path: "Fuzz/Targets"
        ),
        .testTarget(name: "MSBProtocolTests", dependencies: ["MSBProtocol"]),
        .testTarget(name: "MSBCoreTests", dependencies: ["MSBCore", "MSBOS", "MSBClient", "MSBProtocol", "MSBVMM", "MSBNetwork", "MSBVolumes", "CMSBSys"]),
        .testTarget(name: "MSBImagesTests", dependencies: ["MSBImages", "MSBArchive", "MSBCore", "MSBClient", "MSBVMM", "MSBSupervisor"]),
        .testTarget(name: "MSBArchiveTests", dependencies: ["MSBArchive", "MSBCore"]),
        .testTarget(name: "MSBSupervisorTests", dependencies: ["MSBSupervisor", "MSBClient", "MSBServer", "MSBVMM", "MSBCore", "MSBOS", "MSBProtocol"]),
        .testTarget(name: "MSBCommandsTests", dependencies: ["MSBCommands", "MSBClient", "MSBCore", "MSBProtocol"]),
        .testTarget(name: "MSBServerTests", dependencies: [
            "MSBServer", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "IntegrationTests", dependencies: ["MSBCore"], exclude: ["Fixtures"]),
    ]
)
