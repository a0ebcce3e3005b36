/// When a sandbox's image is fetched (`msb create/run --pull`, `pull_policy` in
/// `sandbox.start`). Built images (`python`, `node`) are built when missing; `always`
/// treats them like `missing`: only `msb image build --force` rebuilds one.
package enum PullPolicy: String, Sendable, CaseIterable, Codable {
    /// Use the local image; pull (or build) it only if there is none. The default.
    case missing
    /// Ask the registry again for an OCI reference (an unchanged digest downloads no layers).
    case always
    /// Never fetch: an image that is not here is an error.
    case never

    package static let `default` = PullPolicy.missing

    /// `missing`, `always` or `never`; `option` names where the text came from in the error.
    package static func parse(_ text: String, option: String = "--pull") throws(MSBError) -> PullPolicy {
        guard let policy = PullPolicy(rawValue: text) else {
            throw MSBError(.invalidArgument, "invalid \(option) '\(PrintableText.escaped(text, maxScalars: 40))'", hint: "use missing, always or never")
        }
        return policy
    }
}
