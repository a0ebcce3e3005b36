import Glibc
import MSBCore

/// A connection to the kernel's nftables through libnftables (the library behind `nft`),
/// loaded at run time: only a supervisor that filters a sandbox's traffic needs it, and
/// every other msb process starts without it.
///
/// The session must live as long as the tables it made with the `owner` flag: they are
/// bound to its netlink socket and vanish with it (see EgressFilter.ruleset).
package final class NFTablesSession {
    private typealias NewContext = @convention(c) (UInt32) -> OpaquePointer?
    private typealias FreeContext = @convention(c) (OpaquePointer?) -> Void
    private typealias RunCommand = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    private typealias BufferOutput = @convention(c) (OpaquePointer?) -> Int32
    private typealias GetBuffer = @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?

    private let context: OpaquePointer
    private let free: FreeContext
    private let run: RunCommand
    private let errorText: GetBuffer

    /// The library's soname in Debian's `libnftables1` (a dependency of `nftables`).
    static let library = "libnftables.so.1"

    package init() throws(MSBError) {
        let hint = "install the nftables package (it filters sandbox traffic), or use --no-net or --net-unrestricted"
        guard let handle = dlopen(Self.library, RTLD_NOW | RTLD_LOCAL) else {
            throw MSBError(.unsupported, "cannot load \(Self.library): \(String(cString: dlerror()))", hint: hint)
        }
        func symbol<T>(_ name: String, as type: T.Type) throws(MSBError) -> T {
            guard let address = dlsym(handle, name) else {
                throw MSBError(.unsupported, "\(Self.library) has no \(name)", hint: hint)
            }
            return unsafeBitCast(address, to: type)
        }
        let new = try symbol("nft_ctx_new", as: NewContext.self)
        free = try symbol("nft_ctx_free", as: FreeContext.self)
        run = try symbol("nft_run_cmd_from_buffer", as: RunCommand.self)
        let bufferErrors = try symbol("nft_ctx_buffer_error", as: BufferOutput.self)
        let bufferOutput = try symbol("nft_ctx_buffer_output", as: BufferOutput.self)
        errorText = try symbol("nft_ctx_get_error_buffer", as: GetBuffer.self)
        guard let context = new(0) else {
            throw MSBError(.unsupported, "cannot open a connection to nftables", hint: hint)
        }
        self.context = context
        _ = bufferErrors(context)
        _ = bufferOutput(context)
    }

    deinit { free(context) }

    /// Runs one nft document (atomically: all of it or none).
    package func apply(_ document: String) throws(MSBError) {
        guard run(context, document) == 0 else {
            let detail = errorText(context).map { String(cString: $0) } ?? ""
            let firstLine = detail.split(separator: "\n").first.map(String.init) ?? "unknown error"
            throw MSBError(.unsupported, "the host cannot filter the sandbox's traffic (nftables: \(firstLine))",
                           hint: "msb needs nftables in the kernel and root; or use --no-net, or --net-unrestricted to run without a filter")
        }
    }
}
