import Foundation
import Testing
@testable import MSBCore

/// `-v SOURCE:GUESTDIR[:ro]` and the config's `volumes`: what parses, what it reads back as,
/// and the hostile specs that are refused before anything touches the host.
@Suite struct VolumeParsingTests {
    @Test func goodSpecsParseAndReadBack() throws {
        let host = try VolumeMount.parse("/srv//data/:/data")
        #expect(host == VolumeMount(source: .hostPath("/srv/data"), guestPath: "/data", readOnly: false))
        #expect(host.specification == "/srv/data:/data")
        let readOnly = try VolumeMount.parse("/srv/data:/mnt/in/:ro")
        #expect(readOnly == VolumeMount(source: .hostPath("/srv/data"), guestPath: "/mnt/in", readOnly: true))
        #expect(readOnly.specification == "/srv/data:/mnt/in:ro")
        let named = try VolumeMount.parse("cache-1.x_y:/root/.cache:rw")
        #expect(named == VolumeMount(source: .named("cache-1.x_y"), guestPath: "/root/.cache", readOnly: false))
        #expect(named.specification == "cache-1.x_y:/root/.cache")
        for spec in ["/srv/data:/data", "/srv/data:/data:ro", "cache:/c", "cache:/c:ro", "/:/host:ro"] {
            #expect(try VolumeMount.parse(VolumeMount.parse(spec).specification).specification == spec, "\(spec)")
        }
    }

    @Test(arguments: [
        "", ":", "a", "/a", "/a:", ":/b", "/a:/b:rx", "/a:/b:ro:ro", "/a:/b:RO",
        "relative/dir:/b", "./x:/b", "../x:/b", "/a/../etc:/b", "/a/./b:/c", "/a:b", "/a:/b/../c", "/a:/.",
        "/a:/", "/a://", "/a:/proc", "/a:/proc/self", "/a:/sys/kernel", "/a:/dev", "/a:/dev/shm",
        "-x:/b", ".hidden:/b", "_x:/b", "a b:/b", "a/b:/b", "a\nb:/b", "/a\u{1b}[2J:/b", "/a:/b\u{7f}", "/a\u{0}:/b",
        "é:/b", "[::1]:/b",
    ])
    func hostileSpecsAreRefused(_ spec: String) {
        let error = #expect(throws: MSBError.self) { try VolumeMount.parse(spec) }
        #expect(error?.code == .invalidArgument)
        // The refusal never echoes a control character to the terminal.
        #expect(error?.message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } == false)
    }

    @Test func namesAndLengths() throws {
        #expect(VolumeMount.isValidVolumeName(String(repeating: "a", count: 63)))
        #expect(!VolumeMount.isValidVolumeName(String(repeating: "a", count: 64)))
        #expect(!VolumeMount.isValidVolumeName(""))
        #expect(throws: MSBError.self) { try VolumeMount.parse(String(repeating: "a", count: 64) + ":/b") }
        #expect(throws: MSBError.self) { try VolumeMount.parse("/" + String(repeating: "a", count: 4096) + ":/b") }
        let error = #expect(throws: MSBError.self) { try StateStore.validateVolumeName("../etc") }
        #expect(error?.message == "invalid volume name '../etc'")
    }

    @Test func aSetIsCheckedTogether() throws {
        let a = try VolumeMount.parse("x:/data"), b = try VolumeMount.parse("/srv:/data/sub"), c = try VolumeMount.parse("y:/other")
        try VolumeMount.check([a, c])
        let overlap = #expect(throws: MSBError.self) { try VolumeMount.check([a, b]) }
        #expect(overlap?.message == "volumes overlap in the guest: /data and /data/sub")
        #expect(throws: MSBError.self) { try VolumeMount.check([a, a]) }
        // A sibling whose name merely starts the same is no overlap.
        try VolumeMount.check([a, try VolumeMount.parse("z:/data2")])
        let nine = try (1...9).map { try VolumeMount.parse("v\($0):/d\($0)") }
        let many = #expect(throws: MSBError.self) { try VolumeMount.check(nine) }
        #expect(many?.message == "too many volumes: 9 (at most 8)")
    }

    @Test func configsWithoutVolumesDecodeAsNone() throws {
        let old = #"{"name":"web","image":"base","cpus":1,"memoryMiB":512,"environment":[],"workingDirectory":"","accelerator":"auto"}"#
        let config = try JSONDecoder().decode(SandboxConfig.self, from: Data(old.utf8))
        #expect(config.volumes == nil)
        var withVolumes = config
        withVolumes.volumes = [try VolumeMount.parse("data:/data:ro")]
        let again = try JSONDecoder().decode(SandboxConfig.self, from: JSONEncoder().encode(withVolumes))
        #expect(again == withVolumes && again.mounts(volume: "data") && !again.mounts(volume: "other"))
    }
}
