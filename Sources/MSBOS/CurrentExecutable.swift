import Glibc

/// This msb executable, as the kernel knows it: supervisors, template keepers and detached
/// servers run it again.
package enum CurrentExecutable {
    package static var path: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBufferPointer { $0.baseAddress.map { readlink("/proc/self/exe", $0, 4095) } ?? -1 }
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }
}
