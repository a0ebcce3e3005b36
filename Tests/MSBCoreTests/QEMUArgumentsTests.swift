import MSBCore
import MSBVMM
import Testing

/// QEMU's argument vector for the three ways guest memory is set up: a cold boot on
/// anonymous memory, a template build on a shared RAM file, and a restore of a template.
/// A restore loads device state saved by the build, so both must describe the same devices
/// in the same order.
@Suite struct QEMUArgumentsTests {
    /// Where QEMU finds the guest RAM file (QEMUInstance.Descriptor.guestRAM).
    static let ramPath = "/proc/self/fd/10"

    static func arguments(_ memory: GuestMemory, rootDisk: Bool = true, accelerator: Accelerator = .tcg) throws -> [String] {
        var configuration = VirtualMachineConfiguration(
            name: "web", cpus: 2, memoryMiB: 256, accelerator: accelerator,
            kernelPath: "/nonexistent/vmlinuz", initrdPath: "/nonexistent/initramfs",
            extraKernelArguments: ["msb.hostname=web"], consoleLogPath: "/nonexistent/console.log",
            vmmLogPath: "/nonexistent/vmm.log", rootDiskPath: rootDisk ? "/nonexistent/root.qcow2" : nil,
            rootDiskBasePath: rootDisk ? "/nonexistent/base.img" : nil)
        configuration.memory = memory
        // makeInstance only checks that the binary is executable; nothing is started.
        let instance = try QEMUManager(binaryPath: "/bin/true").makeInstance(configuration)
        let qemu = try #require(instance as? QEMUInstance)
        return qemu.arguments(tscKilohertz: 2_000_000)
    }

    /// The value after each occurrence of `flag`.
    static func values(of flag: String, in arguments: [String]) -> [String] {
        arguments.indices.dropLast().filter { arguments[$0] == flag }.map { arguments[$0 + 1] }
    }

    /// The device-describing options, in order, as (flag, value) pairs.
    static func deviceLayout(_ arguments: [String]) -> [String] {
        let flags: Set = ["-device", "-chardev", "-blockdev", "-add-fd", "-serial", "-mon"]
        return arguments.indices.dropLast().filter { flags.contains(arguments[$0]) }.map { arguments[$0] + " " + arguments[$0 + 1] }
    }

    static let sharedFile = GuestMemory.sharedFile(path: "/nonexistent/memory.ram")
    static let restore = GuestMemory.restore(memoryDescriptor: -1, statePath: "/nonexistent/state.bin")

    @Test func aColdBootUsesAnonymousMemoryAndBootsTheKernel() throws {
        let args = try Self.arguments(.anonymous)
        #expect(args.first == "/bin/true")
        #expect(Self.values(of: "-M", in: args) == ["microvm,x-option-roms=off,rtc=on"])
        #expect(Self.values(of: "-object", in: args).isEmpty)
        #expect(Self.values(of: "-m", in: args) == ["256"])
        #expect(Self.values(of: "-smp", in: args) == ["2"])
        #expect(Self.values(of: "-kernel", in: args) == ["/proc/self/fd/3"])
        #expect(Self.values(of: "-initrd", in: args) == ["/proc/self/fd/4"])
        let append = try #require(Self.values(of: "-append", in: args).first)
        #expect(append.hasPrefix("console=ttyS0 "))
        #expect(append.contains(" tsc_early_khz=2000000 "))
        #expect(append.hasSuffix(" msb.hostname=web msb.root=/dev/vda"))
        #expect(!args.contains("-incoming"))
    }

    @Test func aTemplateBuildMapsItsRAMFileSharedAndBootsTheKernel() throws {
        let args = try Self.arguments(Self.sharedFile)
        #expect(Self.values(of: "-M", in: args) == ["microvm,x-option-roms=off,rtc=on,memory-backend=mem"])
        #expect(Self.values(of: "-object", in: args) == ["memory-backend-file,id=mem,size=256M,mem-path=\(Self.ramPath),share=on"])
        #expect(Self.values(of: "-kernel", in: args) == ["/proc/self/fd/3"])
        #expect(Self.values(of: "-initrd", in: args) == ["/proc/self/fd/4"])
        #expect(Self.values(of: "-append", in: args).count == 1)
        #expect(!args.contains("-incoming"))
    }

    @Test func aRestoreMapsTheRAMFilePrivatelyAndWaitsForItsState() throws {
        let args = try Self.arguments(Self.restore)
        #expect(Self.values(of: "-M", in: args) == ["microvm,x-option-roms=off,rtc=on,memory-backend=mem"])
        // share=off: the guest's writes stay private to this VM, the template is not touched.
        #expect(Self.values(of: "-object", in: args) == ["memory-backend-file,id=mem,size=256M,mem-path=\(Self.ramPath),share=off"])
        #expect(Self.values(of: "-incoming", in: args) == ["defer"])
        // The kernel already runs in the saved RAM.
        for flag in ["-kernel", "-initrd", "-append"] { #expect(!args.contains(flag), "\(flag)") }
        #expect(!args.contains { $0.hasPrefix("/proc/self/fd/3") || $0.hasPrefix("/proc/self/fd/4") })
    }

    @Test(arguments: [true, false])
    func aRestoreHasTheDeviceLayoutOfItsTemplate(rootDisk: Bool) throws {
        let built = try Self.arguments(Self.sharedFile, rootDisk: rootDisk)
        let restored = try Self.arguments(Self.restore, rootDisk: rootDisk)
        let layout = Self.deviceLayout(built)
        #expect(layout == Self.deviceLayout(restored))
        #expect(layout.contains("-device virtio-serial-device,id=vser0"))
        #expect(layout.contains("-device virtio-blk-device,drive=root") == rootDisk)
        #expect(layout.filter { $0.hasPrefix("-blockdev ") }.count == (rootDisk ? 4 : 0))

        // Beyond devices, the two differ only in how the guest starts and how RAM is shared.
        func strip(_ args: [String], _ flags: Set<String>) -> [String] {
            var kept: [String] = []
            var index = 0
            while index < args.count {
                if flags.contains(args[index]) { index += 2; continue }
                kept.append(args[index].replacingOccurrences(of: ",share=on", with: ",share=off"))
                index += 1
            }
            return kept
        }
        #expect(strip(built, ["-kernel", "-initrd", "-append"]) == strip(restored, ["-incoming"]))
    }

    @Test func theDeviceLayoutDoesNotDependOnTheMemoryMode() throws {
        let layouts = try [GuestMemory.anonymous, Self.sharedFile, Self.restore].map { try Self.deviceLayout(Self.arguments($0)) }
        #expect(layouts.allSatisfy { $0 == layouts[0] })
    }

    @Test func aMissingBinaryIsReported() {
        let configuration = VirtualMachineConfiguration(
            name: "web", cpus: 1, memoryMiB: 128, accelerator: .tcg, kernelPath: "/k", initrdPath: "/i",
            extraKernelArguments: [], consoleLogPath: "/c", vmmLogPath: "/v", rootDiskPath: nil)
        #expect(throws: MSBError.self) { try QEMUManager(binaryPath: "/nonexistent/qemu").makeInstance(configuration) }
    }
}
