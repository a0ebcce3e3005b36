/// The body encoding of each `Message` after its type code (Frame.swift frames them).
/// Decoding trusts nothing: counts are bounded before any loop, trailing bytes are refused.

extension Message {
    func encodeBody(into w: inout WireWriter) {
        switch self {
        case .hello(let h), .helloReply(let h):
            w.u32(h.version); w.string(h.software)
        case .exec(let r):
            w.strings(r.argv); w.strings(r.environment); w.string(r.workingDirectory)
            w.bool(r.attachStdin); w.bool(r.tty); w.u16(r.rows); w.u16(r.cols)
            w.u64(r.timeoutMilliseconds); w.string(r.user)
        case .started(let pid): w.i32(pid)
        case .stdin(let d), .stdout(let d), .stderr(let d): w.data(d)
        case .stdinClose, .shutdown, .shutdownAck, .detach, .statsRequest, .heartbeat, .drainStarted: break
        case .replRun(let language, let code): w.string(language); w.string(code)
        case .replDone(let outcome): w.string(outcome.status); w.string(outcome.message)
        case .stats(let g):
            w.u64(g.memoryTotalKiB); w.u64(g.memoryAvailableKiB); w.u64(g.diskUsedBytes)
            w.u64(g.uptimeMilliseconds); w.u64(g.cpuPercentMilli); w.u64(g.networkReceivedBytes); w.u64(g.networkSentBytes)
        case .signal(let s): w.i32(s)
        case .resize(let rows, let cols): w.u16(rows); w.u16(cols)
        case .exited(let s): w.i32(s.code); w.i32(s.signal); w.bool(s.timedOut)
        case .execFailed(let f): w.u8(f.kind.rawValue); w.string(f.message)
        case .error(let text), .stopped(let text), .snapshotSaved(let text), .saveSnapshot(directory: let text): w.string(text)
        case .stopSandbox(let force): w.bool(force)
        case .setup(let g):
            w.string(g.hostname); w.u64(g.wallClockNanoseconds); w.data(g.entropy); w.string(g.rootDevice); w.bool(g.restored)
            w.bool(g.network != nil)
            if let n = g.network {
                w.string(n.interface); w.data(n.macAddress); w.data(n.address); w.u8(n.prefixLength); w.data(n.gateway)
                w.data(n.nameserver); w.u32(n.mtu); w.strings(n.hostsEntries)
            }
            w.u32(UInt32(clamping: g.volumes.count))
            for volume in g.volumes { w.string(volume.tag); w.string(volume.guestPath); w.bool(volume.readOnly) }
        case .setupDone(let text): w.string(text)
        case .setPaused(let paused), .pausedState(let paused): w.bool(paused)
        case .fileRequest(let request): request.encode(into: &w)
        case .fileReply(let reply): reply.encode(into: &w)
        case .drainSandbox(let timeoutMilliseconds): w.u64(timeoutMilliseconds)
        }
    }

    static func decode(type: UInt8, from r: inout WireReader) throws(ProtocolError) -> Message {
        let message: Message
        switch type {
        case 1: message = .hello(Hello(version: try r.u32(), software: try r.string()))
        case 2: message = .helloReply(Hello(version: try r.u32(), software: try r.string()))
        case 3:
            message = .exec(ExecRequest(
                argv: try r.strings(), environment: try r.strings(), workingDirectory: try r.string(),
                attachStdin: try r.bool(), tty: try r.bool(), rows: try r.u16(), cols: try r.u16(),
                timeoutMilliseconds: try r.u64(), user: try r.string()))
        case 4: message = .started(pid: try r.i32())
        case 5: message = .stdin(try r.data())
        case 6: message = .stdinClose
        case 7: message = .stdout(try r.data())
        case 8: message = .stderr(try r.data())
        case 9: message = .signal(try r.i32())
        case 10: message = .resize(rows: try r.u16(), cols: try r.u16())
        case 11: message = .exited(ExitStatus(code: try r.i32(), signal: try r.i32(), timedOut: try r.bool()))
        case 12:
            guard let kind = ExecFailure.Kind(rawValue: try r.u8()) else { throw .malformed("bad failure kind") }
            message = .execFailed(ExecFailure(kind: kind, message: try r.string()))
        case 13: message = .shutdown
        case 14: message = .shutdownAck
        case 15: message = .error(try r.string())
        case 16: message = .stopSandbox(force: try r.bool())
        case 17: message = .stopped(try r.string())
        case 18: message = .detach
        case 19: message = .statsRequest
        case 21: message = .replRun(language: try r.string(), code: try r.string())
        case 22: message = .replDone(ReplOutcome(status: try r.string(), message: try r.string()))
        case 23: message = .heartbeat
        case 24:
            var setup = GuestSetup(
                hostname: try r.string(), wallClockNanoseconds: try r.u64(), entropy: try r.data(),
                rootDevice: try r.string(), restored: try r.bool())
            if try r.bool() {
                setup.network = GuestNetwork(
                    interface: try r.string(), macAddress: try r.data(), address: try r.data(), prefixLength: try r.u8(),
                    gateway: try r.data(), nameserver: try r.data(), mtu: try r.u32(), hostsEntries: try r.strings())
            }
            let volumeCount = try r.u32()
            guard volumeCount <= GuestVolume.maximumCount else { throw .malformed("too many volumes") }
            for _ in 0..<volumeCount {
                setup.volumes.append(GuestVolume(tag: try r.string(), guestPath: try r.string(), readOnly: try r.bool()))
            }
            message = .setup(setup)
        case 25: message = .setupDone(try r.string())
        case 26: message = .setPaused(try r.bool())
        case 27: message = .pausedState(try r.bool())
        case 28: message = .saveSnapshot(directory: try r.string())
        case 29: message = .snapshotSaved(try r.string())
        case 30: message = .fileRequest(try FileRequest.decode(from: &r))
        case 31: message = .fileReply(try FileReply.decode(from: &r))
        case 32: message = .drainSandbox(timeoutMilliseconds: try r.u64())
        case 33: message = .drainStarted
        case 20:
            message = .stats(GuestStats(
                memoryTotalKiB: try r.u64(), memoryAvailableKiB: try r.u64(), diskUsedBytes: try r.u64(),
                uptimeMilliseconds: try r.u64(), cpuPercentMilli: try r.u64(), networkReceivedBytes: try r.u64(),
                networkSentBytes: try r.u64()))
        default: throw .unknownMessageType(type)
        }
        guard r.isAtEnd else { throw .malformed("trailing bytes after message type \(type)") }
        return message
    }
}
