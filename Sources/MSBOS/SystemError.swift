#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: what was being done and the errno it failed with. The OS layer
/// throws only this; each caller wraps it once into its own error at its edge.
package struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was being done, e.g. "cannot connect to /x/ctl.sock".
    package var operation: String
    package var errorNumber: Int32

    package init(_ operation: String, errorNumber: Int32 = errno) {
        self.operation = operation
        self.errorNumber = errorNumber
    }

    /// The C library's text for the errno, e.g. "Connection refused".
    package var reason: String { String(cString: strerror(errorNumber)) }

    package var description: String { "\(operation): \(reason)" }
}
