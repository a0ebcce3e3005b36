#!/usr/bin/env python3
"""A hostile registry for the pull tests (127.0.0.1 only): each repository is one attack.

usage: hostile_registry.py LOGFILE
Prints its port on the first line of stdout, then serves until killed. Every request's
path and Authorization header are appended to LOGFILE, so a test can tell where
credentials went.
"""
import hashlib, json, os, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

signal.pthread_sigmask(signal.SIG_SETMASK, [])
log_path = sys.argv[1]

def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()

TRAVERSAL = "sha256:./" + "../" * 18 + "dev/zero"   # 71 characters, like a real digest
assert len(TRAVERSAL) == 71
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
LAYER = b"not really a layer"

def manifest(config=None, layers=()):
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config or digest(CONFIG), "size": len(CONFIG)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": 1} for d in layers],
    }).encode()

MANIFESTS = {
    "layer-traversal": manifest(layers=[TRAVERSAL]),
    "config-traversal": manifest(config=TRAVERSAL),
    "sha512-layer": manifest(layers=["sha512:" + "a" * 128]),
    "uppercase-digest": manifest(layers=["sha256:" + "A" * 64]),
    "many-layers": manifest(layers=[digest(str(i).encode()) for i in range(500)]),
    "huge-manifest": b'{"pad":"' + b"x" * (5 << 20) + b'"}',
    "mismatch": manifest(layers=[digest(b"what the manifest promised")]),
    "endless-layer": manifest(layers=[digest(b"endless")]),
    "secret-error": None,
    "realm-elsewhere": None,
    "index-traversal": json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"digest": TRAVERSAL, "platform": {"os": "linux", "architecture": "amd64"}}]}).encode(),
}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(log_path, "a") as log:
            log.write(json.dumps({"path": self.path, "authorization": self.headers.get("Authorization")}) + "\n")
        if self.path == "/v2/":
            return self.send(200, b"{}")
        if self.path.startswith("/token"):
            return self.send(200, json.dumps({"token": "t"}).encode())
        parts = self.path.split("/")
        if len(parts) < 5:
            return self.send(404)
        case, kind = parts[3], parts[4]
        if case == "secret-error":
            return self.send(500, b'{"errors":[{"code":"UNKNOWN","message":"SECRET-BODY-TEXT from 10.0.0.1"}]}')
        if case == "realm-elsewhere":
            if self.headers.get("Authorization") != "Bearer t":
                port = self.server.server_address[1]
                return self.send(401, b"", [("WWW-Authenticate", f'Bearer realm="http://localhost:{port}/token",service="x"')])
        if kind == "manifests":
            body = MANIFESTS.get(case) or manifest(layers=[digest(LAYER)])
            return self.send(200, body, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
        if kind == "blobs":
            wanted = "/".join(parts[5:])
            if wanted == digest(CONFIG):
                return self.send(200, CONFIG)
            if case == "endless-layer":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"\0" * 65536
                try:
                    for _ in range(4096):   # 256 MiB at most: bounded even if the client never stops
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            return self.send(200, LAYER)
        return self.send(404)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
