import Foundation
import Glibc

/// A scratch directory per test: `root` (where a layer or a copy is unpacked) beside
/// `outside` (a sentinel tree nothing may touch); `bytesOutside` sums what is there.
final class Scratch {
    let top: String
    var root: String { top + "/root" }
    var outside: String { top + "/outside" }

    init() throws {
        top = FileManager.default.temporaryDirectory.appendingPathComponent("msb-archive-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: top + "/root", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: top + "/outside", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: top + "/outside/sentinel", contents: Data("keep\n".utf8))
    }

    deinit {
        // Read-only directories from a test archive must not stop the cleanup.
        if let items = FileManager.default.enumerator(atPath: top) {
            for case let item as String in items { chmod(top + "/" + item, 0o755) }
        }
        try? FileManager.default.removeItem(atPath: top)
    }

    /// Everything under `outside` and beside `root` except the sentinel: must stay empty.
    var writtenOutside: [String] {
        let beside = ((try? FileManager.default.contentsOfDirectory(atPath: top)) ?? []).filter { $0 != "root" && $0 != "outside" }
        let inOutside = ((try? FileManager.default.contentsOfDirectory(atPath: outside)) ?? []).filter { $0 != "sentinel" }
        let sentinel = FileManager.default.contents(atPath: outside + "/sentinel") == Data("keep\n".utf8) ? [] : ["outside/sentinel (changed)"]
        return beside + inOutside.map { "outside/" + $0 } + sentinel
    }

    /// Bytes of the files outside the root other than the sentinel (the report's figure).
    var bytesOutside: Int {
        writtenOutside.reduce(0) { total, name in
            total + (((try? FileManager.default.attributesOfItem(atPath: top + "/" + name))?[.size] as? Int) ?? 0)
        }
    }

    func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: root + "/" + path).map { String(decoding: $0, as: UTF8.self) }
    }

    func type(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(root + "/" + path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(root + "/" + path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }
}
