/// What the user asked for (`--accel`, `MSB_ACCEL`).
public enum AcceleratorChoice: String, Codable, Sendable, CaseIterable {
    case auto, kvm, tcg

    public static func parse(_ text: String) throws(MSBError) -> AcceleratorChoice {
        guard let choice = AcceleratorChoice(rawValue: text.lowercased()) else {
            throw MSBError(.invalidArgument, "invalid accelerator '\(text)'", hint: "use auto, kvm or tcg")
        }
        return choice
    }
}

/// What a VM actually runs on.
public enum Accelerator: String, Sendable {
    case kvm, tcg
}
