#!/usr/bin/env bash
# The server abuse figures, from one run of the bounded abuse and TLS suites (loopback only):
# slowloris and slow-handshake cut-off times, connections held and closed at the cap, and
# the second namespace's command.run p50/p99 while the first sends 100 sleep calls.
# usage: bench/server_abuse.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/test.sh --filter 'ServerAbuseTests|ServerTLSTests' 2>&1 | grep '^abuse:'
