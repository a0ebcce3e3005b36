#!/usr/bin/env python3
"""Builds an OCI image layout whose layers exercise the layer store, for the pull tests.

usage: oci_fixture.py LAYOUT_DIR
Tags in the layout: "1" (a manifest) and "multi" (an index with linux/amd64 and linux/arm64).
Config: User app (uid 1000 in the image's /etc/passwd), Entrypoint echo, Cmd from-cmd.
Layer 1: busybox (so the image boots and runs commands), /etc/passwd and /etc/group, /data files, an opaque-to-be
  directory, a symlink `escape -> /`, a relative symlink, a hard link, a FIFO (skipped).
Layer 2: a whiteout of /data/old.txt, an opaque /opaque with a new file, a file written
  through the `escape` symlink (must land inside the image).
Layer 3: a 100 MB file.
Tag "hostile": layer 1, then a layer holding a `../evil` entry: the pull is refused.
"""
import gzip, hashlib, io, json, os, sys, tarfile

def add_file(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))

def add_special(tar, name, kind, target="", mode=0o755):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.mode = mode
    tar.addfile(info)

def layer(build):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    plain = raw.getvalue()
    compressed = gzip.compress(plain, compresslevel=1, mtime=0)
    return compressed, "sha256:" + hashlib.sha256(plain).hexdigest()

def layer1(tar):
    busybox = open("/bin/busybox", "rb").read()
    add_special(tar, "bin", tarfile.DIRTYPE)
    add_file(tar, "bin/busybox", busybox, 0o755)
    for applet in ("sh", "cat", "ls", "echo", "test", "readlink", "stat", "wc", "pwd", "env", "id"):
        add_special(tar, "bin/" + applet, tarfile.SYMTYPE, "busybox")
    add_special(tar, "data", tarfile.DIRTYPE)
    add_file(tar, "data/keep.txt", b"kept\n")
    add_file(tar, "data/old.txt", b"old\n")
    add_file(tar, "data/secret.sh", b"#!/bin/sh\necho secret\n", 0o750)
    add_special(tar, "data/hard", tarfile.LNKTYPE, "data/keep.txt")
    add_special(tar, "data/link", tarfile.SYMTYPE, "keep.txt")
    add_special(tar, "data/fifo", tarfile.FIFOTYPE)
    add_special(tar, "opaque", tarfile.DIRTYPE)
    add_file(tar, "opaque/a", b"a\n")
    add_file(tar, "opaque/b", b"b\n")
    add_special(tar, "escape", tarfile.SYMTYPE, "/")
    add_special(tar, "tmp", tarfile.DIRTYPE, mode=0o1777)
    add_file(tar, "etc/greeting", b"hello from the fixture\n")
    add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    add_file(tar, "etc/group", b"root:x:0:\napp:x:1000:\nstaff:x:50:\n")

def layer2(tar):
    add_file(tar, "data/.wh.old.txt", b"")
    add_file(tar, "opaque/.wh..wh..opq", b"")
    add_file(tar, "opaque/c", b"c\n")
    add_file(tar, "escape/etc/escaped", b"inside\n")
    add_file(tar, "data/" + "long-name-" * 12 + "end", b"long\n")

def hostile_layer(tar):
    add_file(tar, "data/fine", b"fine\n")
    add_file(tar, "../evil", b"outside\n")

def layer3(tar):
    chunk = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB, not all zeros
    add_file(tar, "data/big.bin", chunk * 1600)      # 100 MiB

def write_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

def main():
    layout = sys.argv[1]
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    manifest_desc = image(layout, (layer1, layer2, layer3))
    hostile_desc = image(layout, (layer1, hostile_layer))
    nested = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        dict(manifest_desc, platform={"os": "linux", "architecture": "arm64"}),
        dict(manifest_desc, platform={"os": "linux", "architecture": "amd64"})]}
    nested_desc = dict(write_blob(layout, json.dumps(nested).encode()), mediaType="application/vnd.oci.image.index.v1+json")
    index = {"schemaVersion": 2, "manifests": [
        dict(manifest_desc, annotations={"org.opencontainers.image.ref.name": "1"}),
        dict(nested_desc, annotations={"org.opencontainers.image.ref.name": "multi"}),
        dict(hostile_desc, annotations={"org.opencontainers.image.ref.name": "hostile"})]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    print(manifest_desc["digest"])

def image(layout, builds):
    layers, diff_ids = [], []
    for build in builds:
        data, diff_id = layer(build)
        layers.append(dict(write_blob(layout, data), mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
        diff_ids.append(diff_id)
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": ["PATH=/bin", "FIXTURE=1"], "WorkingDir": "/data", "User": "app",
                         "Entrypoint": ["/bin/echo"], "Cmd": ["from-cmd"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_desc = dict(write_blob(layout, json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": layers}
    return dict(write_blob(layout, json.dumps(manifest).encode()), mediaType="application/vnd.oci.image.manifest.v1+json")

if __name__ == "__main__":
    main()
