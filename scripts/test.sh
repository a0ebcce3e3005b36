#!/usr/bin/env bash
# The test command: installs what the tests need, builds msb and a guest for the
# tests, runs every test target (the integration tests boot real microVMs under TCG
# here), then removes every sandbox the tests left and fails if any QEMU survived.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=/opt/swift/usr/bin:$PATH

# zsh and fish: the completion tests load the scripts into real shells; docker-registry
# and skopeo: the pull tests run a real registry on 127.0.0.1; python3-cryptography:
# its token server signs JWTs; python3-venv: the published microsandbox SDK (PyPI) is
# run against msb server; iproute2: the network tests make a namespace and a veth pair.
MSB_EXTRA_PACKAGES="zsh fish docker-registry skopeo python3-cryptography python3-venv iproute2" scripts/setup.sh --deps-only

if [ ! -x .build/sdk-venv/bin/python ] || ! .build/sdk-venv/bin/python -c 'import microsandbox' 2>/dev/null; then
    echo "test: installing the microsandbox Python SDK 0.1.8 from PyPI" >&2
    rm -rf .build/sdk-venv
    python3 -m venv .build/sdk-venv
    .build/sdk-venv/bin/pip install --quiet --disable-pip-version-check "microsandbox==0.1.8"
fi

echo "test: building" >&2
swift build --build-tests 2>&1 | grep -v "dlopen\|^\[" >&2 || true
swift build --build-tests >/dev/null   # fail here if the build failed
BIN=$(swift build --show-bin-path)

# The guest for the tests carries the agent just built.
GUEST=$PWD/.build/test-guest
AGENT=$(mktemp)
strip -o "$AGENT" "$BIN/msb-agent"
scripts/build-guest.sh --agent "$AGENT" --out "$GUEST" --cache "$PWD/.build/guest-cache"
rm -f "$AGENT"

export MSB_ARTIFACTS=$GUEST
export MSB_TEST_HOME=/tmp/msb-test-$$
export MSB_BIN=$BIN/msb
mkdir -p "$MSB_TEST_HOME"

cleanup() {
    # Servers first (a graceful stop stops their sandboxes), then whatever the tests left,
    # then make sure no QEMU of this run survived.
    for home in "$MSB_TEST_HOME"/srv*; do
        [ -d "$home" ] || continue
        MSB_HOME=$home "$MSB_BIN" server stop >/dev/null 2>&1 || true
        for ns in "$home"/namespaces/*; do
            [ -d "$ns" ] || continue
            for name in $(MSB_HOME=$ns "$MSB_BIN" ls -q 2>/dev/null); do
                MSB_HOME=$ns "$MSB_BIN" rm -f "$name" >/dev/null 2>&1 || true
            done
        done
    done
    for name in $(MSB_HOME=$MSB_TEST_HOME "$MSB_BIN" ls -q 2>/dev/null); do
        MSB_HOME=$MSB_TEST_HOME "$MSB_BIN" rm -f "$name" >/dev/null 2>&1 || true
    done
    pkill -f "docker-registry serve $MSB_TEST_HOME" 2>/dev/null || true
    pkill -9 -f "token_server.py $MSB_TEST_HOME" 2>/dev/null || true
    # QEMU's command line names no path (it gets descriptors), but every QEMU is a child of
    # a supervisor and dies with it: a supervisor of this run still alive is a leak.
    leftover=""
    for pid in $(pgrep -f -- " _supervise " || true); do
        if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -q "^MSB_HOME=$MSB_TEST_HOME"; then
            leftover="$leftover $pid"
        fi
    done
    if [ -n "$leftover" ]; then
        echo "test: supervisors (and their QEMU) left behind:$leftover" >&2
        kill -9 $leftover 2>/dev/null || true
        return 1
    fi
    rm -rf "$MSB_TEST_HOME"
}

status=0
swift test --skip-build "$@" || status=$?
cleanup || status=1

# The whole run (no filter) also fuzzes every parser target for MSB_FUZZ_SECONDS (30)
# each, after replaying the committed crash inputs (docs/FUZZING.md).
if [ $# -eq 0 ]; then
    # A fixed seed: the gate replays what passed before; new exploring is a separate,
    # longer run (scripts/fuzz.sh --seconds 600, docs/FUZZING.md).
    scripts/fuzz.sh --seconds "${MSB_FUZZ_SECONDS:-30}" --seed "${MSB_FUZZ_SEED:-1}" || status=1
fi
exit $status
