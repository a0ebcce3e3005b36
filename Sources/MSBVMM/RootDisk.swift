import Foundation
import MSBCore
import MSBOS

/// A sandbox's root disk: a qcow2 overlay whose backing file is its image's read-only
/// ext4. Writes land in the overlay, so they survive stop/start and `rm` drops them.
package enum RootDisk {
    /// `baseFormat` is `raw` for an image's ext4, `qcow2` for a snapshot's disk layer.
    package static func createOverlay(base: String, at path: String, baseFormat: String = "raw") throws(MSBError) {
        guard FileManager.default.fileExists(atPath: base) else {
            throw MSBError(.notFound, "the image's root disk is missing: \(base)", hint: "rebuild the image with 'msb image build'")
        }
        let result: CapturedRun
        do {
            result = try ChildProcess.run(SpawnSpec("/usr/bin/qemu-img", arguments: [
                "qemu-img", "create", "-q", "-f", "qcow2", "-F", baseFormat, "-b", base, path]), timeoutSeconds: 60)
        } catch {
            throw MSBError(.vmmFailure, "cannot run qemu-img: \(error.reason)", hint: "install qemu-utils (scripts/setup.sh does)")
        }
        guard result.status.succeeded else {
            throw MSBError(.vmmFailure, "qemu-img could not create the sandbox disk: \(result.errorSummary())")
        }
        chmod(path, 0o600)
    }

    /// Bytes the guest wrote: what the overlay allocates on the host beyond a fresh one.
    package static func writtenBytes(overlay: String) -> Int? {
        var info = stat()
        guard stat(overlay, &info) == 0 else { return nil }
        let allocated = Int(info.st_blocks) * 512
        return max(0, allocated - 256 * 1024)
    }
}
