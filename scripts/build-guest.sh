#!/usr/bin/env bash
# Build the msb guest: an uncompressed ELF kernel (plus the bzImage as a
# fallback) from Debian's cloud kernel package, and an uncompressed newc
# initramfs with busybox, the needed kernel modules and the msb agent.
#
# usage: scripts/build-guest.sh --agent PATH --out OUTDIR [--cache CACHEDIR]
#
# Outputs in OUTDIR: vmlinux, vmlinuz, kernel-release, initramfs.cpio.
# Needs: apt-get/apt-cache/dpkg-deb, busybox-static, lz4, cpio.
# Environment overrides (optional):
#   MSB_KERNEL_PACKAGE  kernel .deb package name (default: what
#                       linux-image-cloud-amd64 depends on)
#   MSB_GUEST_MODULES   space-separated module names to include (their
#                       dependencies are added automatically)
#   MSB_BUSYBOX         path of a static busybox (default /bin/busybox)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INIT_SCRIPT="$SCRIPT_DIR/guest-init.sh"
META_PACKAGE=linux-image-cloud-amd64
DEFAULT_MODULES="virtio_mmio virtio_console virtio_blk virtio_net virtio_balloon overlay virtiofs"

PROG=build-guest
step() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage() {
    echo "usage: $0 --agent PATH_TO_STATIC_AGENT_BINARY --out OUTDIR [--cache CACHEDIR]" >&2
    exit 2
}

AGENT= OUT= CACHE=
while [ $# -gt 0 ]; do
    case "$1" in
        --agent) [ $# -ge 2 ] || usage; AGENT=$2; shift 2 ;;
        --agent=*) AGENT=${1#*=}; shift ;;
        --out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
        --out=*) OUT=${1#*=}; shift ;;
        --cache) [ $# -ge 2 ] || usage; CACHE=$2; shift 2 ;;
        --cache=*) CACHE=${1#*=}; shift ;;
        -h|--help) usage ;;
        *) echo "$PROG: unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$AGENT" ] && [ -n "$OUT" ] || usage
[ -f "$AGENT" ] || die "agent binary not found: $AGENT"
[ -f "$INIT_SCRIPT" ] || die "missing $INIT_SCRIPT"
for tool in apt-get apt-cache dpkg-deb lz4 cpio find sort od; do
    command -v "$tool" >/dev/null 2>&1 || die "required tool not found: $tool"
done
BUSYBOX=${MSB_BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "static busybox not found at $BUSYBOX (install busybox-static)"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=${CACHE:-$OUT/cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
AGENT=$(cd "$(dirname "$AGENT")" && pwd)/$(basename "$AGENT")

WORK=$(mktemp -d "$OUT/.build.XXXXXX")
LOG="$WORK/log"
DL=
cleanup() { rm -rf "$WORK" ${DL:+"$DL"}; }
trap cleanup EXIT

# Run a command quietly; show its output only if it fails.
quiet() {
    if ! "$@" >"$LOG" 2>&1; then
        cat "$LOG" >&2
        die "command failed: $*"
    fi
}

is_dynamic_elf() { # true if $1 is an ELF with a program interpreter
    command -v readelf >/dev/null 2>&1 || return 1
    readelf -lW "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

if is_dynamic_elf "$BUSYBOX"; then die "$BUSYBOX is dynamically linked; install busybox-static"; fi
if is_dynamic_elf "$AGENT"; then step "warning: $AGENT is dynamically linked; it will not run in the guest"; fi

# --- 1. kernel package -------------------------------------------------------
step "resolving kernel package"
PKG=${MSB_KERNEL_PACKAGE:-}
if [ -z "$PKG" ]; then
    PKG=$(apt-cache depends "$META_PACKAGE" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }') || true
fi
DEB=
if [ -n "$PKG" ]; then
    VERSION=$(apt-cache show --no-all-versions "$PKG" 2>/dev/null |
        awk '$1 == "Version:" { print $2; exit }') || true
    if [ -n "$VERSION" ]; then
        # .deb file names encode an epoch's ':' as %3a
        DEB="$CACHE/${PKG}_${VERSION//:/%3a}_amd64.deb"
        [ -f "$DEB" ] || DEB=
    else
        DEB=$(find "$CACHE" -maxdepth 1 -name "${PKG}_*_amd64.deb" | sort -V | tail -n 1)
    fi
else
    # No apt metadata (offline?): fall back to a cached kernel package.
    DEB=$(find "$CACHE" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*_amd64.deb' | sort -V | tail -n 1)
    [ -n "$DEB" ] || die "cannot resolve the package $META_PACKAGE depends on (run apt-get update?)"
    PKG=$(basename "$DEB"); PKG=${PKG%%_*}
fi
if [ -z "$DEB" ]; then
    step "downloading $PKG into $CACHE"
    # apt-get download writes into the current directory. As root it drops
    # to the _apt user, so download into a scratch directory _apt can write
    # (avoids the "couldn't be accessed by user '_apt'" warning), then move.
    DL=$(mktemp -d "${TMPDIR:-/tmp}/msb-kernel-dl.XXXXXX")
    chmod 0777 "$DL"
    (cd "$DL" && quiet apt-get download "$PKG")
    DEB=$(find "$DL" -maxdepth 1 -name "${PKG}_*_amd64.deb" | head -n 1)
    [ -n "$DEB" ] || die "apt-get download $PKG produced no .deb"
    mv -f "$DEB" "$CACHE/$(basename "$DEB").tmp"
    mv -f "$CACHE/$(basename "$DEB").tmp" "$CACHE/$(basename "$DEB")"
    rm -rf "$DL"; DL=
    DEB="$CACHE/$(basename "$DEB")"
else
    step "using cached $(basename "$DEB")"
fi

step "unpacking $(basename "$DEB")"
KX="$WORK/kernel-pkg"
mkdir -p "$KX"
quiet dpkg-deb -x "$DEB" "$KX"
VMLINUZ_SRC=$(find "$KX/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
[ -n "$VMLINUZ_SRC" ] || die "no boot/vmlinuz-* in $DEB"
RELEASE=${VMLINUZ_SRC##*/vmlinuz-}
MODDIR="$KX/lib/modules/$RELEASE"
[ -d "$MODDIR" ] || die "no lib/modules/$RELEASE in $DEB"

# --- 2. kernel images ----------------------------------------------------------
step "extracting ELF kernel $RELEASE"
cp "$VMLINUZ_SRC" "$WORK/vmlinuz"
magic_offsets() { # byte offsets of a byte pattern (grep -P syntax) in a file
    LC_ALL=C grep -obUaP "$1" "$2" 2>/dev/null | cut -d: -f1 || true
}
is_elf() { [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }
try_decompress() { # $1=pattern, rest=decompressor command reading stdin
    local pattern=$1 off
    shift
    for off in $(magic_offsets "$pattern" "$WORK/vmlinuz"); do
        # The payload is followed by other data: ignore trailing-garbage errors
        # and check the result instead.
        tail -c "+$((off + 1))" "$WORK/vmlinuz" | "$@" >"$WORK/vmlinux" 2>/dev/null || true
        if [ -s "$WORK/vmlinux" ] && is_elf "$WORK/vmlinux"; then return 0; fi
    done
    return 1
}
if ! try_decompress '\x02\x21\x4c\x18' lz4 -dc; then
    # Not the expected LZ4 payload: try the other usual kernel compressions.
    try_decompress '\x28\xb5\x2f\xfd' zstd -dcq ||
        try_decompress '\xfd\x37\x7a\x58\x5a\x00' xz -dcq ||
        try_decompress '\x1f\x8b\x08' gzip -dcq ||
        die "could not extract an ELF kernel from $(basename "$VMLINUZ_SRC")"
fi

# --- 3. initramfs ----------------------------------------------------------------
step "collecting kernel modules"
ROOT="$WORK/root"
mkdir -p "$ROOT"
declare -A MOD_PATH=() MOD_BUILTIN=() MOD_DONE=()
MOD_ORDER=()
norm() { local n=${1##*/}; n=${n%%.ko*}; printf '%s' "${n//-/_}"; }
while IFS= read -r f; do
    MOD_PATH[$(norm "$f")]=${f#"$MODDIR"/}
done < <(find "$MODDIR" -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \))
if [ -f "$MODDIR/modules.builtin" ]; then
    while IFS= read -r f; do
        [ -n "$f" ] && MOD_BUILTIN[$(norm "$f")]=1
    done <"$MODDIR/modules.builtin"
fi
# Copy (decompressing if needed) one module into the initramfs, after its
# dependencies (from the depends= field of its .modinfo section).
add_module() {
    local name rel src dst deps dep
    name=$(norm "$1")
    [ -z "${MOD_DONE[$name]:-}" ] || return 0
    MOD_DONE[$name]=1
    if [ -n "${MOD_BUILTIN[$name]:-}" ]; then return 0; fi
    rel=${MOD_PATH[$name]:-}
    [ -n "$rel" ] || die "kernel module $name is neither built into $RELEASE nor shipped as a module"
    src="$MODDIR/$rel"
    rel=${rel%.xz}; rel=${rel%.zst}; rel=${rel%.gz}
    dst="$ROOT/lib/modules/$RELEASE/$rel"
    mkdir -p "$(dirname "$dst")"
    case "$src" in
        *.xz) xz -dc "$src" >"$dst" ;;
        *.zst) zstd -dcq "$src" >"$dst" ;;
        *.gz) gzip -dc "$src" >"$dst" ;;
        *) cp "$src" "$dst" ;;
    esac
    deps=$(tr '\0' '\n' <"$dst" | grep -a '^depends=' || true)
    deps=${deps%%$'\n'*}
    deps=${deps#depends=}
    for dep in ${deps//,/ }; do add_module "$dep"; done
    MOD_ORDER+=("/lib/modules/$RELEASE/$rel")
}
for m in ${MSB_GUEST_MODULES:-$DEFAULT_MODULES}; do add_module "$m"; done

step "assembling initramfs"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var}
chmod 1777 "$ROOT/tmp"
chmod 0700 "$ROOT/root"
ln -s ../run "$ROOT/var/run"
ln -s ../tmp "$ROOT/var/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
chmod 0755 "$ROOT/bin/busybox"
while IFS= read -r applet; do
    applet=${applet#/}
    case "$applet" in ''|bin/busybox) continue ;; esac
    mkdir -p "$ROOT/$(dirname "$applet")"
    [ -e "$ROOT/$applet" ] || ln -s /bin/busybox "$ROOT/$applet"
done < <("$BUSYBOX" --list-full)
rm -f "$ROOT/sbin/msb-agent"
cp "$AGENT" "$ROOT/sbin/msb-agent"
chmod 0755 "$ROOT/sbin/msb-agent"
cp "$INIT_SCRIPT" "$ROOT/init"
chmod 0755 "$ROOT/init"
printf '%s\n' "${MOD_ORDER[@]}" >"$ROOT/etc/msb-modules"
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOT/etc/passwd"
printf '%s\n' 'root:x:0:' 'tty:x:5:' 'nogroup:x:65534:' >"$ROOT/etc/group"
echo msb >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$ROOT/etc/hosts"
echo "$RELEASE" >"$ROOT/etc/msb-kernel-release"
# The kernel's built-in initramfs already provides /dev/console; add it here
# too when we can (root), so the archive does not depend on that.
mknod -m 0600 "$ROOT/dev/console" c 5 1 2>/dev/null || true
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet) >"$WORK/initramfs.cpio" 2>"$LOG" ||
    { cat "$LOG" >&2; die "cpio failed"; }

# --- outputs (each replaced atomically) ----------------------------------------
step "writing $OUT"
echo "$RELEASE" >"$WORK/kernel-release"
for f in vmlinux vmlinuz kernel-release initramfs.cpio; do
    mv -f "$WORK/$f" "$OUT/$f.tmp"
    mv -f "$OUT/$f.tmp" "$OUT/$f"
done
