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

    static func arguments(_ memory: GuestMemory, rootDisk: Bool = true, accelerator: Accelerator = .tcg,
                          layers: [String] = [], network: NetworkAttachment? = nil, volumes: [VolumeAttachment] = []) throws -> [String] {
        var configuration = VirtualMachineConfiguration(
            name: "web", cpus: 2, memoryMiB: 256, accelerator: accelerator,
            kernelPath: "/nonexistent/vmlinuz", initrdPath: "/nonexistent/initramfs",
            extraKernelArguments: ["msb.hostname=web"], consoleLogPath: "/nonexistent/console.log",
            vmmLogPath: "/nonexistent/vmm.log", rootDiskPath: rootDisk ? "/nonexistent/root.qcow2" : nil,
            rootDiskBasePath: rootDisk ? "/nonexistent/base.img" : nil)
        configuration.memory = memory
        configuration.rootDiskLayers = layers
        configuration.network = network
        configuration.volumes = volumes
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

    @Test func aSnapshotWriterReceivesIntoItsSharedRAMFileWithoutBooting() throws {
        let args = try Self.arguments(.receive(sharedFilePath: "/nonexistent/memory.ram", streamDescriptor: -1))
        #expect(Self.values(of: "-object", in: args) == ["memory-backend-file,id=mem,size=256M,mem-path=\(Self.ramPath),share=on"])
        #expect(Self.values(of: "-incoming", in: args) == ["defer"])
        #expect(args.contains("-S"), "the writer must stay paused after the migration arrived")
        #expect(Self.values(of: "-kernel", in: args).isEmpty)
        #expect(try Self.deviceLayout(args) == Self.deviceLayout(Self.arguments(.anonymous)))
    }

    /// A fork's disk: its overlay on the snapshots' layers on the image, each a descriptor
    /// of its own, each backing named explicitly (never taken from a qcow2 header).
    @Test func snapshotLayersChainBetweenTheOverlayAndTheImage() throws {
        let args = try Self.arguments(Self.restore, layers: ["/nonexistent/snap2.qcow2", "/nonexistent/snap1.qcow2"])
        let blockdevs = Self.values(of: "-blockdev", in: args)
        #expect(blockdevs == [
            "driver=file,node-name=base-file,filename=/dev/fdset/2,read-only=on",
            "driver=raw,node-name=base,file=base-file,read-only=on",
            "driver=file,node-name=layer1-file,filename=/dev/fdset/4,read-only=on",
            "driver=qcow2,node-name=layer1,file=layer1-file,backing=base,read-only=on",
            "driver=file,node-name=layer0-file,filename=/dev/fdset/3,read-only=on",
            "driver=qcow2,node-name=layer0,file=layer0-file,backing=layer1,read-only=on",
            "driver=file,node-name=root-file,filename=/dev/fdset/1,discard=unmap",
            "driver=qcow2,node-name=root,file=root-file,backing=layer0,discard=unmap",
        ])
        #expect(Self.values(of: "-add-fd", in: args) == ["fd=8,set=1", "fd=9,set=2", "fd=14,set=4", "fd=13,set=3"])
        // The guest sees the same one disk device either way.
        #expect(Self.values(of: "-device", in: args) == Self.values(of: "-device", in: try Self.arguments(Self.restore)))
    }

    @Test func aNetworkCardTalksToItsInheritedConnectionAndOpensNothing() throws {
        let args = try Self.arguments(.anonymous, network: NetworkAttachment(descriptor: 99, macAddress: "02:11:22:33:44:55"))
        #expect(Self.values(of: "-netdev", in: args) == ["stream,id=net0,server=off,addr.type=fd,addr.str=12"])
        #expect(Self.values(of: "-device", in: args).contains("virtio-net-device,netdev=net0,mac=02:11:22:33:44:55,guest_announce=off"))
        // Without a network there is no card at all (--no-net: only lo in the guest).
        let none = try Self.arguments(.anonymous)
        #expect(Self.values(of: "-netdev", in: none).isEmpty)
        #expect(!Self.values(of: "-device", in: none).contains { $0.hasPrefix("virtio-net") })
    }

    /// Volumes: one vhost-user-fs device each, its connection after the snapshot layers,
    /// guest RAM in a shared memfd virtiofsd can map, and modern virtio-mmio (libvhost-user
    /// refuses legacy devices). Without volumes nothing of it appears.
    @Test func volumesAreVhostUserFsDevicesOnSharedMemory() throws {
        let volumes = [VolumeAttachment(descriptor: 40, tag: "msbvol0"), VolumeAttachment(descriptor: 41, tag: "msbvol1")]
        let args = try Self.arguments(.sharedAnonymous, layers: ["/nonexistent/layer0"], volumes: volumes)
        #expect(Self.values(of: "-chardev", in: args).suffix(2) == ["socket,id=vol0,fd=14", "socket,id=vol1,fd=15"])
        #expect(Self.values(of: "-device", in: args).filter { $0.hasPrefix("vhost-user-fs") }
            == ["vhost-user-fs-device,chardev=vol0,tag=msbvol0", "vhost-user-fs-device,chardev=vol1,tag=msbvol1"])
        #expect(Self.values(of: "-object", in: args) == ["memory-backend-memfd,id=mem,size=256M,share=on"])
        #expect(Self.values(of: "-M", in: args).first?.hasSuffix(",memory-backend=mem") == true)
        #expect(Self.values(of: "-global", in: args).contains("virtio-mmio.force-legacy=false"))
        let none = try Self.arguments(.anonymous)
        #expect(!none.contains { $0.contains("vhost-user") || $0.contains("force-legacy") || $0.contains("memfd") })
    }

    @Test func aRestoreWithANetworkHasTheCardOfItsTemplate() throws {
        let card = NetworkAttachment(descriptor: nil, macAddress: "02:00:00:00:00:01")
        let built = try Self.arguments(Self.sharedFile, network: card)
        let restored = try Self.arguments(Self.restore, network: NetworkAttachment(descriptor: 5, macAddress: "02:00:00:00:00:01"))
        #expect(Self.deviceLayout(built) == Self.deviceLayout(restored))
    }

    @Test func aMissingBinaryIsReported() {
        let configuration = VirtualMachineConfiguration(
            name: "web", cpus: 1, memoryMiB: 128, accelerator: .tcg, kernelPath: "/k", initrdPath: "/i",
            extraKernelArguments: [], consoleLogPath: "/c", vmmLogPath: "/v", rootDiskPath: nil)
        #expect(throws: MSBError.self) { try QEMUManager(binaryPath: "/nonexistent/qemu").makeInstance(configuration) }
    }
}
