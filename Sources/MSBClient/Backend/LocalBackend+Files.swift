import MSBCore

/// The Files API on this host: the operation goes to the sandbox's supervisor over its
/// control socket, which passes it to the guest agent; the agent does the work in the guest.
extension LocalBackend {
    package func fileOperation(_ name: String, _ operation: GuestFileOperation) throws(MSBError) -> GuestFileResult {
        try InputParsing.validateName(name)
        // Refused before anything is reached: the path only ever names the guest's file system.
        _ = try GuestPath.normalized(operation.path)
        return try connect(name, purpose: .files).guestFiles(sandbox: name).perform(operation)
    }
}
