import Foundation
import MSBClient
import MSBCore

/// `sandbox.start` / `sandbox.create` fetch a missing image as `pull_policy` says (default
/// `missing`). Who may: any key may pull a name no image has yet and have python or node
/// built when they are missing (the SDKs' default images); only a key for all namespaces
/// makes `always` move a name that exists (as `image.pull`). `registry_auth` serves this
/// pull only: it is not kept with the sandbox and never logged.
extension RPCDispatcher {
    /// How long a start waits for its image's fetch before answering "not ready, retry"
    /// (the fetch goes on): the Python SDK 0.1.8 waits 210 s for `sandbox.start` (its
    /// `timeout` 180 + 30), and the boot after a build needs some of that.
    static let imageFetchWaitSeconds = 150.0

    func imageFetch(_ call: RPCCall, _ params: RPC.SandboxConfigParams?) throws(MSBError) -> ImageFetch {
        var fetch = ImageFetch()
        if let text = params?.pull_policy ?? params?.pull {
            guard let policy = PullPolicy(rawValue: text) else {
                throw RPCParams.invalid(params?.pull_policy != nil ? "pull_policy" : "pull", "missing, always or never")
            }
            fetch.policy = policy
        }
        fetch.credentials = try params?.registry_auth?.credentials()
        if params?.insecure_registry == true {
            guard configuration.allowInsecureRegistries else {
                throw MSBError(.accessDenied, "pulling over plain HTTP is not allowed on this server",
                               hint: "the server's operator can allow it with 'msb server start --allow-insecure-registries'")
            }
            fetch.insecure = true
        }
        fetch.replaceExisting = call.isAdmin
        fetch.allowHint = "set pull_policy to missing (msb: --pull missing)"
        let log = self.log
        fetch.progress = { line in log("msb server: " + line) }
        return fetch
    }

    /// Fetches `config`'s image if `fetch` says so, waiting at most `imageFetchWaitSeconds`.
    func ensureImage(of config: SandboxConfig, _ fetch: ImageFetch, _ backend: LocalBackend, namespace: String) throws(MSBError) {
        guard config.snapshot == nil else { return }
        switch backend.imageAction(config.image, fetch) {
        case .useLocal: return
        case .refuse: throw fetch.notHere(config.image)
        case .pull, .build: break
        }
        let (name, building) = backend.imageTarget(config.image)
        let pending = MSBError(.notReady, "image \(name) is being \(building ? "built" : "pulled") on first use; retry in a minute",
                               hint: "the server goes on fetching it; a start after that finds it")
        // The fetch may outlive this request: it gets a backend of its own.
        let paths = backend.paths, image = config.image
        try host.pulls.withSlot(namespace) { () throws(MSBError) in
            try host.imageFetches.run(name, waitSeconds: Self.imageFetchWaitSeconds, pending: pending) { () throws(MSBError) in
                try LocalBackend(paths: paths, namespace: namespace).ensureImage(image, fetch)
            }
        }
    }
}
