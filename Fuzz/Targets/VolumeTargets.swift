import MSBCore

extension FuzzTargets {
    /// `-v` / the SDKs' `volumes` strings (`VolumeMount.parse`), sent by remote clients. What
    /// parses must name an absolute, normalised guest path outside the guest kernel's
    /// directories, a normalised host path or a valid volume name, carry no control
    /// character, and give itself back from its own text: nothing a client sends may turn
    /// into a path with `..` in it, on either side.
    static func fuzzVolumeSpecs(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let mount = try? VolumeMount.parse(text) else { return }
        func normalised(_ path: String) -> Bool {
            path.hasPrefix("/") && !path.contains("//") && (path == "/" || !path.hasSuffix("/"))
                && !path.split(separator: "/").contains { $0 == "." || $0 == ".." }
                && !path.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        }
        guard normalised(mount.guestPath), mount.guestPath != "/" else { violated("'\(text)' gave the guest path '\(mount.guestPath)'") }
        for reserved in VolumeMount.reservedGuestPaths where mount.guestPath == reserved || mount.guestPath.hasPrefix(reserved + "/") {
            violated("'\(text)' mounts over \(reserved)")
        }
        switch mount.source {
        case .hostPath(let path):
            guard normalised(path) else { violated("'\(text)' gave the host path '\(path)'") }
        case .named(let name):
            guard VolumeMount.isValidVolumeName(name), !name.contains("/") else { violated("'\(text)' gave the volume name '\(name)'") }
        }
        let again = mount.specification
        guard (try? VolumeMount.parse(again)) == mount else { violated("'\(text)' parsed as \(mount); '\(again)' does not give it back") }
        // One mount is always a valid set, and twice the same guest path never is.
        guard (try? VolumeMount.check([mount])) != nil, (try? VolumeMount.check([mount, mount])) == nil else {
            violated("'\(text)': the set checks do not hold")
        }
    }
}
