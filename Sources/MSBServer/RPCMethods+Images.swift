import Foundation
import MSBClient
import MSBCore

/// Images are shared by every namespace of a server: anyone may list them and pull new ones;
/// only a key for all namespaces may move a name that exists (re-pull), build, remove or
/// prune them.
extension RPCDispatcher {
    func imageList(_ call: RPCCall, _ p: RPC.NamespaceParams) throws(MSBError) -> RPC.ImageList.Result {
        RPC.ImageList.Result(images: try host.backend(call.namespace(p.namespace)).listImages())
    }

    func imagePull(_ call: RPCCall, _ p: RPC.ImagePull.Params) throws(MSBError) -> RPC.ImageResult {
        let backend = try host.backend(call.namespace(p.namespace))
        let insecure = p.insecure ?? false
        if insecure && !configuration.allowInsecureRegistries {
            throw MSBError(.accessDenied, "pulling over plain HTTP is not allowed on this server",
                           hint: "the server's operator can allow it with 'msb server start --allow-insecure-registries'")
        }
        let namespace = backend.namespace
        return try host.pulls.withSlot(namespace) { () throws(MSBError) in
            RPC.ImageResult(try backend.pullImage(p.reference, insecure: insecure, credentials: p.credentials,
                                                  replaceExisting: call.isAdmin) { _ in })
        }
    }

    func imageBuild(_ call: RPCCall, _ p: RPC.ImageNameParams) throws(MSBError) -> RPC.ImageResult {
        try call.requireAdmin("building images")
        return RPC.ImageResult(try host.imageAdministration.buildImage(p.name, force: p.force ?? false) { _ in })
    }

    func imageRemove(_ call: RPCCall, _ p: RPC.ImageNameParams) throws(MSBError) -> String {
        try call.requireAdmin("removing images")
        // In use anywhere on the server counts, not just in the caller's namespace.
        try host.imageAdministration.removeImage(p.name, usedBy: try host.imageUsers(), force: p.force ?? false)
        return "Image \(p.name) removed successfully"
    }

    func imagePrune(_ call: RPCCall, _ p: RPC.NamespaceParams) throws(MSBError) -> RPC.ImagePrune.Result {
        try call.requireAdmin("pruning images")
        return RPC.ImagePrune.Result(removed: try host.imageAdministration.pruneImages(usedBy: Set(host.imageUsers().map(\.1))))
    }
}
