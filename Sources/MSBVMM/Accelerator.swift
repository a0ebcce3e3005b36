import CMSBSys
import Foundation
import MSBCore
import MSBOS

package struct AcceleratorDecision: Sendable {
    package var accelerator: Accelerator
    /// Why KVM is not used, when `auto` fell back to TCG.
    package var fallbackReason: String?
}

/// Decides between KVM and TCG. KVM is used only where it really boots a Linux guest:
/// some hosts expose a /dev/kvm (the `kvm_pvm` paravirtual nested hypervisor) on which
/// stock kernels hang in the decompressor.
package enum AcceleratorProbe {
    package static func kvmUnusableReason() -> String? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: "/dev/kvm") else { return "/dev/kvm does not exist" }
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { return "/dev/kvm is not accessible to this user" }
        if fm.fileExists(atPath: "/sys/module/kvm_pvm") {
            return "this host's KVM is the kvm_pvm nested hypervisor, which cannot boot Linux guests"
        }
        guard fm.fileExists(atPath: "/sys/module/kvm_intel") || fm.fileExists(atPath: "/sys/module/kvm_amd") else {
            return "neither kvm_intel nor kvm_amd is loaded"
        }
        return nil
    }

    package static func decide(_ choice: AcceleratorChoice) throws(MSBError) -> AcceleratorDecision {
        switch choice {
        case .tcg:
            return AcceleratorDecision(accelerator: .tcg, fallbackReason: nil)
        case .kvm:
            if let reason = kvmUnusableReason() {
                throw MSBError(.unsupported, "KVM cannot be used: \(reason)", hint: "use --accel tcg or --accel auto")
            }
            return AcceleratorDecision(accelerator: .kvm, fallbackReason: nil)
        case .auto:
            if let reason = kvmUnusableReason() {
                return AcceleratorDecision(accelerator: .tcg, fallbackReason: reason)
            }
            return AcceleratorDecision(accelerator: .kvm, fallbackReason: nil)
        }
    }

    /// The host TSC frequency in kHz. Under TCG the guest TSC is the host's, and a guest
    /// that has to calibrate it itself hangs in about one boot in three, so it is passed
    /// as `tsc_early_khz`. Where the host kernel knows the frequency exactly
    /// (`tsc_known_freq`), /proc/cpuinfo's "cpu MHz" is it; otherwise it is measured
    /// against CLOCK_MONOTONIC (about 20 ms, which is paid before every boot).
    package static func hostTSCKilohertz() -> UInt64 {
        if let known = knownTSCKilohertz() { return known }
        var samples: [UInt64] = []
        for _ in 0..<3 {
            var t0 = timespec(), t1 = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t0)
            let c0 = msb_rdtsc()
            usleep(7_000)
            let c1 = msb_rdtsc()
            clock_gettime(CLOCK_MONOTONIC, &t1)
            let ns = Double(t1.tv_sec - t0.tv_sec) * 1e9 + Double(t1.tv_nsec - t0.tv_nsec)
            samples.append(UInt64(Double(c1 &- c0) / ns * 1e6))
        }
        return samples.sorted()[1]
    }

    static func knownTSCKilohertz() -> UInt64? {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        var megahertz: Double?
        var known = false
        for line in cpuinfo.split(separator: "\n") {
            if line.hasPrefix("cpu MHz"), megahertz == nil, let value = line.split(separator: ":").last {
                megahertz = Double(value.trimmingCharacters(in: .whitespaces))
            } else if line.hasPrefix("flags") {
                let flags = line.split(separator: " ")
                known = flags.contains("tsc_known_freq") && flags.contains("constant_tsc")
                break
            }
        }
        guard known, let megahertz, megahertz > 100 else { return nil }
        return UInt64((megahertz * 1000).rounded())
    }
}
