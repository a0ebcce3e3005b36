import Crypto
import Foundation
import MSBCore

/// Where a namespace lives on disk: `$MSB_HOME/namespaces/DIR`. Namespaces follow the SDKs'
/// rule (up to 63 characters, upper and lower case distinct), but a directory name must not
/// depend on what the file system does with case (`Team` and `team` are two namespaces
/// even where `Team/` and `team/` would be one directory), and must leave room in the
/// sandboxes' socket paths (107 bytes in all, `DIR/sandboxes/NAME/ctl.sock` included).
///
/// So a namespace of the rule older servers had (lower case, at most 32 characters) keeps
/// the directory of its own name, where its state already is; any other namespace gets
/// `+` and 32 hex digits of its SHA-256 (`+` is outside the namespace alphabet, so the two
/// kinds never meet), with a `namespace` file inside that says whose it is, for listing.
enum NamespaceDirectory {
    /// The file in a hashed directory that names its namespace.
    static let markerFile = "namespace"
    private static let hashedPrefix = "+"

    /// Lower-case letters, digits, '_' and '-', at most 32 bytes: the older rule.
    static func isPlain(_ namespace: String) -> Bool {
        let bytes = Array(namespace.utf8)
        return !bytes.isEmpty && bytes.count <= 32
            && bytes.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 122) || $0 == 95 || $0 == 45 }
    }

    /// The directory name of `namespace`, which must be valid (`InputParsing.validateNamespace`).
    static func name(for namespace: String) -> String {
        if isPlain(namespace) { return namespace }
        let digest = SHA256.hash(data: Data(namespace.utf8))
        return hashedPrefix + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Makes sure the directory of a hashed namespace exists and names `namespace`; refuses
    /// one that names another (a hash collision, or a damaged file). Plain namespaces need
    /// nothing: their directory is made when their database is first opened.
    static func claim(_ namespace: String, in root: String) throws(MSBError) {
        guard !isPlain(namespace) else { return }
        let directory = root + "/" + name(for: namespace)
        let marker = directory + "/" + markerFile
        if try owner(of: marker) == nil {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw MSBError(.stateStore, "cannot create the directory of namespace \(namespace)", cause: SendableErrorDescription("\(error)"))
            }
            // Written beside its final name and linked into place: a reader never sees half
            // a name, and of two servers making it at once one wins and the other reads it.
            let temporary = marker + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(namespace.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw MSBError(.stateStore, "cannot record the directory of namespace \(namespace)")
            }
            let linked = link(temporary, marker) == 0 || errno == EEXIST
            unlink(temporary)
            guard linked else { throw MSBError(.stateStore, "cannot record the directory of namespace \(namespace)") }
        }
        guard let owner = try owner(of: marker), owner == namespace else {
            throw MSBError(.stateStore, "the directory of namespace \(namespace) is recorded for another namespace",
                           hint: "tell the server's operator")
        }
    }

    /// The namespace whose directory is `entry` (a name in `root`), or nil for anything else
    /// (a directory being made, the server's own `.prewarm`, a stray file).
    static func namespace(ofDirectory entry: String, in root: String) -> String? {
        if isPlain(entry) { return entry }
        guard entry.hasPrefix(hashedPrefix), let owner = try? owner(of: root + "/" + entry + "/" + markerFile),
              (try? InputParsing.validateNamespace(owner)) != nil, name(for: owner) == entry else { return nil }
        return owner
    }

    /// What a marker says; nil when there is none. At most 64 bytes are read (a namespace
    /// has 63), so a damaged file is refused, never loaded whole.
    private static func owner(of marker: String) throws(MSBError) -> String? {
        guard let handle = FileHandle(forReadingAtPath: marker) else {
            guard access(marker, F_OK) == 0 else { return nil }
            throw MSBError(.stateStore, "cannot read \(marker)", hint: "tell the server's operator")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: 65) ?? Data()
        } catch {
            throw MSBError(.stateStore, "cannot read \(marker)", cause: SendableErrorDescription("\(error)"))
        }
        guard data.count <= 64 else { throw MSBError(.stateStore, "\(marker) is damaged", hint: "tell the server's operator") }
        return String(decoding: data, as: UTF8.self)
    }
}
