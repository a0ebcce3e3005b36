import Foundation
import MSBClient
import MSBCore

/// Images are shared by every namespace of a server: anyone may list and pull them; only a
/// key for all namespaces may build, remove or prune them.
extension RPCDispatcher {
    func imageList(_ call: RPCCall) throws(MSBError) -> Any {
        return ["images": try host.backend(call.namespace()).listImages().map { RemoteWire.object($0) }]
    }

    func imagePull(_ call: RPCCall) throws(MSBError) -> Any {
        let backend = try host.backend(call.namespace())
        let reference = try call.params.requiredString("reference")
        let insecure = try call.params.bool("insecure") ?? false
        if insecure && !configuration.allowInsecureRegistries {
            throw MSBError(.accessDenied, "pulling over plain HTTP is not allowed on this server",
                           hint: "the server's operator can allow it with 'msb server start --allow-insecure-registries'")
        }
        let image = try backend.pullImage(reference, insecure: insecure, credentials: call.params.string("credentials")) { _ in }
        return ["image": RemoteWire.object(image)]
    }

    func imageBuild(_ call: RPCCall) throws(MSBError) -> Any {
        try call.requireAdmin("building images")
        let name = try call.params.requiredString("name")
        let info = try host.imageAdministration.buildImage(name, force: call.params.bool("force") ?? false) { _ in }
        return ["image": RemoteWire.object(info)]
    }

    func imageRemove(_ call: RPCCall) throws(MSBError) -> Any {
        try call.requireAdmin("removing images")
        let name = try call.params.requiredString("name")
        // In use anywhere on the server counts, not just in the caller's namespace.
        let users = try host.allSandboxes().map { ("\($0.namespace)/\($0.name)", $0.config.image) }
        try host.imageAdministration.removeImage(name, usedBy: users, force: call.params.bool("force") ?? false)
        return "Image \(name) removed successfully"
    }

    func imagePrune(_ call: RPCCall) throws(MSBError) -> Any {
        try call.requireAdmin("pruning images")
        return ["removed": try host.imageAdministration.pruneImages()]
    }
}
