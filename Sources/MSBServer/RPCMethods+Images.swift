import Foundation
import MSBCore

/// Images are shared by every namespace of a server: anyone may list and pull them; only a
/// key for all namespaces may build, remove or prune them.
extension RPCDispatcher {
    private var images: ImageStore { ImageStore(paths: host.paths) }

    func imageList(_ call: RPCCall) throws(MSBError) -> Any {
        _ = try call.namespace()
        return ["images": try images.list().map { RemoteWire.object($0) }]
    }

    func imagePull(_ call: RPCCall) throws(MSBError) -> Any {
        _ = try call.namespace()
        let reference = try call.params.requiredString("reference")
        let insecure = try call.params.bool("insecure") ?? false
        if insecure && !configuration.allowInsecureRegistries {
            throw MSBError(.accessDenied, "pulling over plain HTTP is not allowed on this server",
                           hint: "the server's operator can allow it with 'msb server start --allow-insecure-registries'")
        }
        let puller = ImagePuller(store: images) { _ in }
        return ["image": RemoteWire.object(try puller.pull(reference, insecure: insecure, credentials: call.params.string("credentials")))]
    }

    func imageBuild(_ call: RPCCall) throws(MSBError) -> Any {
        try call.requireAdmin("building images")
        let name = try call.params.requiredString("name")
        let info = try ImageBuilder(store: images) { _ in }.build(name, force: call.params.bool("force") ?? false)
        return ["image": RemoteWire.object(info)]
    }

    func imageRemove(_ call: RPCCall) throws(MSBError) -> Any {
        try call.requireAdmin("removing images")
        let name = try call.params.requiredString("name")
        // In use anywhere on the server counts, not just in the caller's namespace.
        let users = try host.allSandboxes().map { ("\($0.namespace)/\($0.name)", $0.config.image) }
        try images.remove(name, usedBy: users, force: call.params.bool("force") ?? false)
        return "Image \(name) removed successfully"
    }

    func imagePrune(_ call: RPCCall) throws(MSBError) -> Any {
        try call.requireAdmin("pruning images")
        return ["removed": images.prune()]
    }
}
