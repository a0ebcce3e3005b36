import Foundation

/// The fuzz targets by name. One binary holds them all (one build, one link); the target is
/// chosen by `MSB_FUZZ_TARGET` because libFuzzer owns the command line. Adding a target is
/// one entry here, a function, and a seed directory in Fuzz/Corpus/NAME.
enum FuzzTargets {
    /// Each target runs one input and returns; a crash (trap, fatal error) is the finding.
    /// Thrown errors are the parsers' normal answer to bad input and are ignored.
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "arguments": fuzzArguments,
        "frame": fuzzFrameDecoding,
        "image-reference": fuzzImageReference,
        "input-values": fuzzInputValues,
        "json-rpc": fuzzJSONRPC,
        "network-spec": fuzzNetworkSpecs,
        "tar": fuzzArchive,
        "volume-spec": fuzzVolumeSpecs,
    ]

    /// The parts of an input that a target reads as several strings: split on NUL bytes.
    static func fields(_ bytes: [UInt8]) -> [String] {
        bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// An invariant the parser promises but broke: a finding like a crash, with its reason.
    static func violated(_ what: String) -> Never {
        fatalError("fuzz invariant violated: \(what)")
    }
}

/// One `main` for both builds: SwiftPM links every executable's entry point under its own
/// name, so libFuzzer's `main` cannot be used; ours hands over to libFuzzer's driver.
@main
enum FuzzMain {
    static func main() {
        #if MSB_FUZZ
        let name = ProcessInfo.processInfo.environment["MSB_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTargets.all[name] else { usage("set MSB_FUZZ_TARGET") }
        selectedTarget = target
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
        #else
        // Without libFuzzer: runs files through a target, to replay a crash under a
        // debugger or with the normal build (`msb-fuzz frame Fuzz/Regressions/frame/*`).
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTargets.all[name] else { usage("usage: msb-fuzz TARGET FILE...") }
        for path in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("msb-fuzz: cannot read \(path)\n".utf8))
                exit(1)
            }
            target(Array(data))
            print("ok \(path)")
        }
        #endif
    }

    static func usage(_ what: String) -> Never {
        FileHandle.standardError.write(Data("msb-fuzz: \(what) (targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", ")))\n".utf8))
        exit(2)
    }
}

#if MSB_FUZZ
/// The target chosen for this process, set once before libFuzzer starts.
nonisolated(unsafe) private var selectedTarget: (@Sendable ([UInt8]) -> Void)?

/// Also exported under libFuzzer's well-known name: its archive's own `main` (unused, since
/// SwiftPM's `main` alias wins) is linked in and refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget?(bytes)
    return 0
}

/// libFuzzer's entry (compiler-rt FuzzerInterface.h): parses libFuzzer's flags from argv and
/// runs the callback; pointer and integer arguments only, so the Swift declaration matches C.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32
#endif
