import Foundation
import MSBCore
import MSBOS

/// A saved, booted guest ready to be resumed: the RAM file every restore maps
/// copy-on-write and the device state QEMU loads.
package struct Template: Sendable {
    package var key: String
    package var directory: String
    package var inputs: TemplateInputs
    package var ramPath: String { directory + "/" + TemplateStore.ramFile }
    package var statePath: String { directory + "/" + TemplateStore.stateFile }

    package init(key: String, directory: String, inputs: TemplateInputs) {
        self.key = key
        self.directory = directory
        self.inputs = inputs
    }
}

/// The templates under `$MSB_HOME/templates`, one directory per `TemplateInputs.key`,
/// made complete in a work directory and renamed into place, so a directory that exists
/// is whole. Builders of one key take its lock, so concurrent first starts build it once.
package struct TemplateStore: Sendable {
    static let ramFile = "memory.ram"
    static let stateFile = "state.bin"
    static let inputsFile = "template.json"

    package let directory: String

    package init(directory: String) {
        self.directory = directory
    }

    /// The template for `inputs`, if one was saved for exactly these inputs.
    package func lookup(_ inputs: TemplateInputs) -> Template? {
        let template = Template(key: inputs.key, directory: directory + "/" + inputs.key, inputs: inputs)
        guard let data = FileDescriptorIO.readFile(template.directory + "/" + Self.inputsFile, limitBytes: 64 << 10),
              let recorded = try? JSONDecoder().decode(TemplateInputs.self, from: Data(data)), recorded == inputs,
              access(template.ramPath, F_OK) == 0, access(template.statePath, F_OK) == 0 else { return nil }
        return template
    }

    /// Every template directory with the inputs it records (unreadable ones included, as nil).
    package func all() -> [(key: String, inputs: TemplateInputs?)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        // Template directories only (not their locks, keeper sockets and logs).
        let directories = names.filter { name in
            var info = stat()
            return !name.hasPrefix(".") && lstat(directory + "/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        }
        return directories.sorted().map { name in
            let data = FileDescriptorIO.readFile(directory + "/" + name + "/" + Self.inputsFile, limitBytes: 64 << 10)
            return (name, data.flatMap { try? JSONDecoder().decode(TemplateInputs.self, from: Data($0)) })
        }
    }

    /// Runs `body` holding the build lock of `key`, waiting for another builder at most
    /// `timeoutSeconds`. The lock is an flock: a builder killed with -9 releases it.
    package func withBuildLock<T>(key: String, timeoutSeconds: Double, _ body: () throws(MSBError) -> T) throws(MSBError) -> T {
        try prepare()
        let fd = open(directory + "/" + key + ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw MSBError(.stateStore, "cannot open the template lock: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let deadline = MonotonicClock.now() + timeoutSeconds
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw MSBError(.stateStore, "cannot lock the template: \(String(cString: strerror(errno)))")
            }
            guard MonotonicClock.now() < deadline else {
                throw MSBError(.timeout, "another msb has been building this template for over \(Int(timeoutSeconds))s")
            }
            usleep(20_000)
        }
        return try body()
    }

    /// A fresh directory to build a template in (`.tmp-*`, removed by `removeLeftovers`).
    package func makeWorkDirectory() throws(MSBError) -> String {
        try prepare()
        var template = Array((directory + "/.tmp-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw MSBError(.stateStore, "cannot create a template work directory: \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    /// Records `inputs` in `work` and moves it into place as the template for them.
    package func install(_ work: String, inputs: TemplateInputs) throws(MSBError) -> Template {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(inputs),
              FileManager.default.createFile(atPath: work + "/" + Self.inputsFile, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw MSBError(.stateStore, "cannot record the template's inputs")
        }
        let target = directory + "/" + inputs.key
        // A template for these inputs that failed its restore is replaced, never reused.
        if access(target, F_OK) == 0 { remove(key: inputs.key) }
        guard rename(work, target) == 0 else {
            throw MSBError(.stateStore, "cannot install the template: \(String(cString: strerror(errno)))")
        }
        return Template(key: inputs.key, directory: target, inputs: inputs)
    }

    /// Removes a template. Running sandboxes restored from it keep their mapping of its RAM.
    package func remove(key: String) {
        let target = directory + "/" + key
        // Renamed away first, so no restore picks up a half-removed template.
        let doomed = directory + "/.doomed-" + key + "-\(getpid())"
        guard rename(target, doomed) == 0 else { return }
        try? FileManager.default.removeItem(atPath: doomed)
        // Its keeper sees the directory gone and exits once no sandbox holds its memory.
        unlink(target + ".keeper.log")
    }

    /// Removes every template whose inputs `isCurrent` rejects (or that records none) and
    /// old leftovers; returns how many templates went.
    package func removeStale(isCurrent: (TemplateInputs) -> Bool) -> Int {
        var removed = 0
        for (key, inputs) in all() where !(inputs.map(isCurrent) ?? false) {
            remove(key: key)
            removed += 1
            // Its lock goes too, unless a build holds it right now.
            let lock = directory + "/" + key + ".lock"
            let fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            if fd >= 0 {
                if flock(fd, LOCK_EX | LOCK_NB) == 0 { unlink(lock) }
                close(fd)
            }
        }
        removeLeftovers()
        return removed
    }

    /// Removes work directories of builds that never finished (their builder is gone
    /// when the lock is free; callers hold no lock, so only old ones go).
    package func removeLeftovers(olderThanSeconds: Double = 600) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let now = Date()
        for name in names where name.hasPrefix(".tmp-") || name.hasPrefix(".doomed-") {
            let path = directory + "/" + name
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? now
            if now.timeIntervalSince(modified) > olderThanSeconds { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    private func prepare() throws(MSBError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw MSBError(.stateStore, "cannot create the template directory \(directory)")
        }
    }
}
