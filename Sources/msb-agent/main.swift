import CMSBSys
import Glibc
import MSBOS
import MSBProtocol

// The guest agent: started by /init as PID 1 once modules are loaded and file systems
// are mounted. It finds the virtio-serial port named "agent" and serves exec requests.

/// Looks up /dev/vportNpM whose sysfs name is `name`.
func findPort(named name: String) -> String? {
    guard let dir = opendir("/sys/class/virtio-ports") else { return nil }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard entryName.hasPrefix("vport") else { continue }
        let fd = open("/sys/class/virtio-ports/\(entryName)/name", O_RDONLY)
        guard fd >= 0 else { continue }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = read(fd, &buf, 127)
        close(fd)
        guard n > 0 else { continue }
        let portName = String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: "\n ")
        if portName == name { return "/dev/\(entryName)" }
    }
    return nil
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}

_ = msb_signal_ignore(SIGPIPE)
var signalPipe: [Int32] = [-1, -1]
guard msb_pipe(&signalPipe, 1) == 0 else {
    log("cannot create the signal pipe: \(errnoText())")
    exit(1)
}
_ = msb_signal_to_pipe(SIGCHLD, signalPipe[1])

var portPath: String?
let portSearchStart = MonotonicClock.now()
while portPath == nil {
    portPath = findPort(named: "agent")
    if portPath == nil {
        if MonotonicClock.now() - portSearchStart > 30 {
            log("no virtio-serial port named 'agent' appeared; is virtio_console loaded?")
        }
        usleep(10_000)
    }
}
GuestStatistics.recordBaseline()
if let portPath { AgentServer(portPath: portPath, childSignalFd: signalPipe[0]).run() }
