import Foundation
import MSBCore
import MSBImages

/// How `create` gets a sandbox's image that is not here (`--pull`, `pull_policy`): the
/// policy and what one pull needs. The credentials serve this pull only; nothing keeps them.
package struct ImageFetch: Sendable {
    package var policy: PullPolicy
    /// `user:password` for the registry (`MSB_REGISTRY_AUTH`, `registry_auth`).
    package var credentials: String?
    /// Plain HTTP (a local registry without TLS).
    package var insecure: Bool
    /// false: a name that is already an image is never moved (a server's namespace keys).
    package var replaceExisting = true
    /// How a person allows fetching, for the `never` error's hint.
    package var allowHint = "use --pull missing"
    /// Receives progress lines (stderr in the CLI, the log on a server).
    package var progress: @Sendable (String) -> Void

    package init(policy: PullPolicy = .default, credentials: String? = nil, insecure: Bool = false,
                 progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.policy = policy
        self.credentials = credentials
        self.insecure = insecure
        self.progress = progress
    }

    package enum Action: Equatable, Sendable {
        case useLocal, pull, build, refuse
    }

    /// What `policy` does with an image that is `present` or not; `buildable` images
    /// (python, node) are built, never pulled, and `always` does not rebuild them.
    package static func action(_ policy: PullPolicy, present: Bool, buildable: Bool) -> Action {
        switch (policy, present) {
        case (.never, false): return .refuse
        case (.never, true), (.missing, true): return .useLocal
        case (.always, true): return buildable ? .useLocal : .pull
        case (.missing, false), (.always, false): return buildable ? .build : .pull
        }
    }

    /// The `never` refusal.
    package func notHere(_ reference: String) -> MSBError {
        MSBError(.notFound, "image not found: \(reference)", hint: "pull it with 'msb pull \(reference)' or \(allowHint)")
    }
}

extension LocalBackend {
    /// The image name `reference` is stored under, and whether it is built (python, node)
    /// rather than pulled.
    package func imageTarget(_ reference: String) -> (name: String, buildable: Bool) {
        let name = ImageStore(paths: paths).canonicalName(reference)
        return (name, ImageBuilder.recipes[name] != nil)
    }

    /// What `ensureImage` would do for `reference` now.
    package func imageAction(_ reference: String, _ fetch: ImageFetch) -> ImageFetch.Action {
        let store = ImageStore(paths: paths)
        let name = store.canonicalName(reference)
        if name == ImageStore.baseName { return .useLocal }
        let present = (try? store.get(reference)).map { $0.kind != "builtin" } ?? false
        return ImageFetch.action(fetch.policy, present: present, buildable: ImageBuilder.recipes[name] != nil)
    }

    /// Makes sure the image `reference` is here as `fetch` says: the one place where the CLI
    /// and the server pull or build an image on first use. A fetch holds the image's lock
    /// in the store, so concurrent first uses (other processes too) fetch it once.
    package func ensureImage(_ reference: String, _ fetch: ImageFetch) throws(MSBError) {
        switch imageAction(reference, fetch) {
        case .useLocal: return
        case .refuse: throw fetch.notHere(reference)
        case .pull, .build: break
        }
        let store = ImageStore(paths: paths)
        let name = store.canonicalName(reference)
        let buildable = ImageBuilder.recipes[name] != nil
        func present() -> Bool { (try? store.get(reference)).map { $0.kind != "builtin" } ?? false }
        // Checked before waiting on the lock: a bad reference is a usage error at once.
        if !buildable { _ = try ImageReference.parse(reference) }
        try store.withFetchLock(name) { () throws(MSBError) in
            // Another process may have fetched it while this one waited.
            let action = ImageFetch.action(fetch.policy == .always && !buildable ? .always : .missing, present: present(), buildable: buildable)
            switch action {
            case .useLocal, .refuse: return
            case .build:
                fetch.progress("building image \(name) on first use (this takes a few minutes)")
                _ = try ImageBuilder(store: store, progress: fetch.progress).build(name, force: false)
            case .pull:
                fetch.progress("pulling image \(reference)")
                _ = try pullImage(reference, insecure: fetch.insecure, credentials: fetch.credentials,
                                  replaceExisting: fetch.replaceExisting, progress: fetch.progress)
            }
        }
    }
}
