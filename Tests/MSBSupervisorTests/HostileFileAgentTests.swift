import Foundation
import Glibc
import MSBClient
import MSBCore
import MSBOS
import MSBProtocol
import Testing
@testable import MSBSupervisor

/// The Files API behind the real supervisor, with a scripted agent playing the guest: the
/// host takes no length, count or name from it on trust and waits for it with a deadline.
@Suite struct HostileFileAgentTests {
    private func files(_ fixture: SupervisorFixture) throws -> GuestFileClient {
        try fixture.connect().guestFiles(sandbox: SupervisorFixture.name)
    }

    @Test func anAnswerPassesThroughTheSupervisorAndErrorsKeepTheirKind() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onFile = { id, request, agent in
                switch request.operation {
                case .stat: agent.send(id, .fileReply(FileReply(entries: [FileEntry(name: "hosts", kind: .file, sizeBytes: 12, mode: 0o644, modifiedSeconds: 5)])))
                case .read: agent.send(id, .fileReply(.failure(.isADirectory, "Is a directory")))
                default: agent.send(id, .fileReply(.failure(.permission, "Permission denied")))
                }
            }
        }
        defer { fixture.tearDown() }
        let client = try files(fixture)
        #expect(try client.perform(.stat(path: "/etc//hosts")) == .info(GuestFileInfo(name: "hosts", type: "file", size: 12, mode: 0o644, modified: 5)))
        #expect(throws: MSBError.self) { try client.perform(.read(path: "/etc", offset: 0, length: 10)) }
        do { _ = try client.perform(.read(path: "/etc", offset: 0, length: 10)) } catch {
            #expect(error.code == .isADirectory && error.message == "cannot read \(SupervisorFixture.name):/etc: is a directory")
        }
        do { _ = try client.perform(.remove(path: "/etc/shadow", recursive: false)) } catch {
            #expect(error.code == .permissionDenied)
        }
        // The requests reached the agent with the normalised path.
        #expect(fixture.agent.messages.map(\.message).contains { if case .fileRequest(let r) = $0, r.path == "/etc/hosts" { true } else { false } })
    }

    @Test func moreBytesThanAskedForAreRefused() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onFile = { id, _, agent in agent.send(id, .fileReply(FileReply(data: [UInt8](repeating: 1, count: 100), total: 100))) }
        }
        defer { fixture.tearDown() }
        do { _ = try files(fixture).perform(.read(path: "/f", offset: 0, length: 10)); Issue.record("100 bytes passed for 10") } catch let error as MSBError {
            #expect(error.code == .agentFailure && error.message.contains("sent more bytes than asked for"))
        }
    }

    @Test func hostileListingsAreRefused() throws {
        let names = ["../../etc/passwd", "a/b", "..", ""]
        for name in names {
            let fixture = try SupervisorFixture { agent in
                agent.onFile = { id, _, agent in
                    agent.send(id, .fileReply(FileReply(entries: [FileEntry(name: name, kind: .file, sizeBytes: 1, mode: 0, modifiedSeconds: 0)], total: 1)))
                }
            }
            defer { fixture.tearDown() }
            do { _ = try files(fixture).perform(.list(path: "/")); Issue.record("'\(name)' was listed") } catch let error as MSBError {
                #expect(error.code == .agentFailure, "\(name)")
            }
        }
        // A directory claimed to hold more entries than any listing returns.
        let fixture = try SupervisorFixture { agent in
            agent.onFile = { id, _, agent in agent.send(id, .fileReply(FileReply(total: .max))) }
        }
        defer { fixture.tearDown() }
        do { _ = try files(fixture).perform(.list(path: "/")); Issue.record("an endless listing passed") } catch let error as MSBError {
            #expect(error.code == .tooLarge)
        }
    }

    /// An agent that claims every page is full with the same entries never holds the host
    /// beyond the listing limit.
    @Test func anEndlessListingStopsAtTheLimit() throws {
        let fixture = try SupervisorFixture { agent in
            agent.onFile = { id, request, agent in
                let entries = (0..<FileReply.maxEntries).map { FileEntry(name: "f\($0)", kind: .file, sizeBytes: 0, mode: 0, modifiedSeconds: 0) }
                agent.send(id, .fileReply(FileReply(entries: entries, total: UInt64(GuestFileOperation.maxListEntries))))
            }
        }
        defer { fixture.tearDown() }
        guard case .entries(let entries) = try files(fixture).perform(.list(path: "/")) else { Issue.record("no entries"); return }
        #expect(entries.count == GuestFileOperation.maxListEntries)
    }

    @Test func aSilentAgentEndsTheRequestAtItsDeadline() throws {
        let fixture = try SupervisorFixture { agent in agent.onFile = { _, _, _ in } }
        defer { fixture.tearDown() }
        let connection = try fixture.connect()
        let started = MonotonicClock.now()
        #expect(throws: MSBError.self) { try connection.fileExchange(FileRequest(.stat, path: "/"), id: 1, timeoutSeconds: 0.5) }
        #expect(MonotonicClock.now() - started < 5)
    }

    @Test func pathsOutsideTheGuestRootNeverLeaveTheHost() throws {
        let fixture = try SupervisorFixture()
        defer { fixture.tearDown() }
        let client = try files(fixture)
        for path in ["../etc/passwd", "/../../etc/passwd", "/tmp/../..", "relative", "/a\u{0}b", "/a\nb"] {
            #expect(throws: MSBError.self, "\(path)") { try client.perform(.stat(path: path)) }
        }
        #expect(!fixture.agent.messages.map(\.message).contains { if case .fileRequest = $0 { true } else { false } })
    }
}
