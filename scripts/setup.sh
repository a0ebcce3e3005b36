#!/usr/bin/env bash
# Sets up msb on a Debian 12 machine: installs the packages it needs, builds msb and
# its static guest agent, fetches the guest kernel from Debian's archive, builds the
# guest initramfs, installs `msb` to /usr/local/bin and boots one real sandbox.
#
# usage: scripts/setup.sh [--deps-only] [--no-smoke-test]
#   MSB_HOME       state directory (default ~/.msb); the guest goes to $MSB_HOME/guest
#   MSB_ARTIFACTS  where to put the guest kernel and initramfs instead
#   MSB_EXTRA_PACKAGES  more Debian packages to install with the rest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEPS_ONLY=0 SMOKE=1
for arg in "$@"; do
    case "$arg" in
        --deps-only) DEPS_ONLY=1 ;;
        --no-smoke-test) SMOKE=0 ;;
        *) echo "usage: $0 [--deps-only] [--no-smoke-test]" >&2; exit 2 ;;
    esac
done

# qemu-system-common ships virtiofsd (volumes); qemu-system-x86 depends on it, named for clarity.
PACKAGES=(qemu-system-x86 qemu-system-common qemu-utils busybox-static e2fsprogs lz4 cpio libsqlite3-dev libedit-dev libarchive-dev zlib1g-dev pkg-config binutils mmdebstrap passt nftables)
# Extra packages a caller needs as well (scripts/test.sh: the shells for completion tests).
read -r -a EXTRA <<<"${MSB_EXTRA_PACKAGES:-}"
PACKAGES+=("${EXTRA[@]}")
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ "$DEPS_ONLY" -eq 1 ] && exit 0

export PATH=/opt/swift/usr/bin:$PATH
echo "setup: building msb (release)" >&2
# The Swift runtime and Foundation linked in: every msb invocation starts in a third of
# the time (no shared-library loading; bench/startup.py measures it).
swift build -c release --product msb --static-swift-stdlib >/dev/null
swift build -c release --product msb-agent 2>&1 | grep -v "dlopen\|^\[" >&2 || true
BIN=$(swift build -c release --show-bin-path)

AGENT_STRIPPED=$(mktemp)
trap 'rm -f "$AGENT_STRIPPED"' EXIT
strip -o "$AGENT_STRIPPED" "$BIN/msb-agent"

MSB_HOME=${MSB_HOME:-$HOME/.msb}
ARTIFACTS=${MSB_ARTIFACTS:-$MSB_HOME/guest}
mkdir -p "$MSB_HOME" && chmod 700 "$MSB_HOME"
scripts/build-guest.sh --agent "$AGENT_STRIPPED" --out "$ARTIFACTS" --cache "$MSB_HOME/cache"

if [ -w /usr/local/bin ]; then
    install -m 0755 -s "$BIN/msb" /usr/local/bin/msb   # stripped: less to map at every start
    MSB=/usr/local/bin/msb
    # man msb, and completions where each shell looks for them.
    install -D -m 0644 man/msb.1 /usr/local/share/man/man1/msb.1
    install -D -m 0644 completions/msb.bash /usr/local/share/bash-completion/completions/msb
    install -D -m 0644 completions/_msb /usr/local/share/zsh/site-functions/_msb
    install -D -m 0644 completions/msb.fish /usr/local/share/fish/vendor_completions.d/msb.fish
    echo "setup: installed /usr/local/bin/msb, its man page and completions" >&2
else
    MSB=$BIN/msb
fi

if [ "$SMOKE" -eq 1 ]; then
    echo "setup: booting a sandbox: msb run -- uname -a" >&2
    MSB_HOME=$MSB_HOME MSB_ARTIFACTS=$ARTIFACTS "$MSB" run -- uname -a
fi
echo "setup: done" >&2
