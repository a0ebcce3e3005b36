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
    ],
    targets: [
        // C helpers: fork/exec with setsid, pdeathsig and exec-error reporting, rdtsc, ioctls.
        // Swift cannot call C variadics (ioctl, prctl, syscall), so they live here.
        .target(name: "CMSBSys"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // libedit for the REPLs; a dependency of the CLI only, never of the static agent.
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        // Host <-> guest wire protocol: framing and messages. Glibc only, so the static agent can link it.
        .target(name: "MSBProtocol", dependencies: ["CMSBSys"]),
        // Guest agent: PID 1 in the microVM, linked statically.
        .executableTarget(
            name: "msb-agent",
            dependencies: ["MSBProtocol", "CMSBSys"],
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),
        // Sandbox model, state store, backends, VMM layer, supervisor.
        .target(name: "MSBCore", dependencies: ["MSBProtocol", "CMSBSys", "CSQLite"]),
        // `msb server`: JSON-RPC over HTTP in front of per-namespace local backends.
        .target(
            name: "MSBServer",
            dependencies: [
                "MSBCore", "MSBProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Command table, argument parser and one file per subcommand.
        .target(name: "MSBCommands", dependencies: ["MSBCore", "MSBServer", "CEditLine"]),
        .executableTarget(name: "msb", dependencies: ["MSBCommands"]),
        .testTarget(name: "MSBProtocolTests", dependencies: ["MSBProtocol"]),
        .testTarget(name: "MSBCoreTests", dependencies: ["MSBCore"]),
        .testTarget(name: "MSBCommandsTests", dependencies: ["MSBCommands"]),
        .testTarget(name: "MSBServerTests", dependencies: ["MSBServer"]),
        .testTarget(name: "IntegrationTests", dependencies: ["MSBCore"], exclude: ["Fixtures"]),
    ]
)
