#!/usr/bin/env bash
# Fuzzes msb's parsers of hostile input with libFuzzer (docs/FUZZING.md).
#
# usage: scripts/fuzz.sh [--seconds N] [--seed N] [--update-corpus] [TARGET...]
#
# Builds the msb-fuzz target with -sanitize=fuzzer into .build/fuzz (its own build
# directory, so the normal debug build is untouched), then for each target (default: every
# directory in Fuzz/Corpus): replays every input in Fuzz/Regressions/TARGET, and fuzzes for
# N seconds (default 30) starting from Fuzz/Corpus/TARGET. A crash input is saved in
# Fuzz/Crashes/TARGET/ (not committed: move it to Fuzz/Regressions/TARGET/ with the fix).
# --update-corpus merges what the run found into Fuzz/Corpus/TARGET, keeping only inputs
# that add coverage. --seed fixes libFuzzer's random seed (the test run uses one, so a
# run that passed passes again; exploring runs leave it out). Exits non-zero if any target
# crashed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=/opt/swift/usr/bin:$PATH

SECONDS_PER_TARGET=30 SEED= UPDATE_CORPUS=0 TARGETS=()
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_PER_TARGET=${2:?--seconds needs a number}; shift ;;
        --seed) SEED=${2:?--seed needs a number}; shift ;;
        --update-corpus) UPDATE_CORPUS=1 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
        *) TARGETS+=("$1") ;;
    esac
    shift
done
case $SECONDS_PER_TARGET in ''|*[!0-9]*) echo "fuzz: --seconds takes a whole number" >&2; exit 2 ;; esac
case $SEED in *[!0-9]*) echo "fuzz: --seed takes a whole number" >&2; exit 2 ;; esac
if [ ${#TARGETS[@]} -eq 0 ]; then
    for dir in Fuzz/Corpus/*/; do TARGETS+=("$(basename "$dir")"); done
fi

# The largest input per target: big enough for every structure the target parses, small
# enough that libFuzzer spends its time on structure rather than on length.
max_len() {
    case $1 in
        frame) echo 4096 ;;
        json-rpc) echo 2048 ;;
        tar) echo 16384 ;;   # tar headers are 512 bytes each
        *) echo 512 ;;
    esac
}

echo "fuzz: building msb-fuzz with -sanitize=fuzzer (.build/fuzz)" >&2
BUILD=(swift build --scratch-path .build/fuzz --product msb-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DMSB_FUZZ)
if ! "${BUILD[@]}" >/tmp/msb-fuzz-build.$$ 2>&1; then
    grep -v "dlopen" /tmp/msb-fuzz-build.$$ | tail -40 >&2
    rm -f /tmp/msb-fuzz-build.$$
    echo "fuzz: the build failed" >&2
    exit 1
fi
rm -f /tmp/msb-fuzz-build.$$
BIN=$(swift build --scratch-path .build/fuzz --show-bin-path)/msb-fuzz

# libFuzzer must see the crash signal: Swift's own backtracer would catch it first and
# exit without libFuzzer writing the crashing input.
export SWIFT_BACKTRACE=enable=no

WORK=$(mktemp -d /tmp/msb-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
failed=() summary=()
for target in "${TARGETS[@]}"; do
    if [ ! -d "Fuzz/Corpus/$target" ]; then
        echo "fuzz: no target '$target' (no Fuzz/Corpus/$target)" >&2
        failed+=("$target"); continue
    fi
    export MSB_FUZZ_TARGET=$target
    crashes=Fuzz/Crashes/$target
    mkdir -p "$crashes" "$WORK/$target"
    log=$WORK/$target.log
    options=(-max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 -use_value_profile=1
             -artifact_prefix="$crashes/" -print_final_stats=1)
    [ -f "Fuzz/Dictionaries/$target.dict" ] && options+=(-dict="Fuzz/Dictionaries/$target.dict")
    [ -n "$SEED" ] && options+=(-seed="$SEED")

    # Every committed crash first: a regression fails fast, before any fuzzing.
    regressions=()
    if [ -d "Fuzz/Regressions/$target" ]; then
        while IFS= read -r -d '' file; do regressions+=("$file"); done \
            < <(find "Fuzz/Regressions/$target" -type f -print0 | sort -z)
    fi
    if [ ${#regressions[@]} -gt 0 ]; then
        if ! "$BIN" "${options[@]}" "${regressions[@]}" >"$log" 2>&1; then
            grep -Ev "^0x|^ *#?[0-9]+ +(0x|msb-fuzz|lib)" "$log" | tail -30 >&2
            echo "fuzz: $target: a committed regression input crashes again" >&2
            failed+=("$target"); summary+=("$target: regression failed"); continue
        fi
    fi

    echo "fuzz: $target: ${#regressions[@]} regression inputs pass; fuzzing for ${SECONDS_PER_TARGET}s" >&2
    status=0
    "$BIN" "${options[@]}" -max_total_time="$SECONDS_PER_TARGET" \
        "$WORK/$target" "Fuzz/Corpus/$target" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    if [ $status -ne 0 ]; then
        grep -Ev "^0x|^ *#?[0-9]+ +(0x|msb-fuzz|lib)" "$log" | tail -30 >&2
        echo "fuzz: $target: CRASH after ${runs:-?} executions; input saved in $crashes/" >&2
        failed+=("$target"); summary+=("$target: CRASH (exit $status) after ${runs:-?} executions")
        continue
    fi
    summary+=("$target: ${runs:-?} executions in ${SECONDS_PER_TARGET}s, no crash")
    if [ "$UPDATE_CORPUS" -eq 1 ]; then
        merged=$WORK/$target.merged
        mkdir -p "$merged"
        # Edges only (no value profiles, no hit counts), smallest covering set: the
        # committed corpus stays at tens of files.
        "$BIN" "${options[@]/-use_value_profile=1/-use_value_profile=0}" -use_counters=0 -set_cover_merge=1 \
            "$merged" "Fuzz/Corpus/$target" "$WORK/$target" >"$log" 2>&1
        rm -f "Fuzz/Corpus/$target"/*
        for file in "$merged"/*; do cp "$file" "Fuzz/Corpus/$target/"; done
        echo "fuzz: $target: corpus now $(ls "Fuzz/Corpus/$target" | wc -l) inputs" >&2
    fi
done

echo "fuzz: results" >&2
for line in "${summary[@]}"; do echo "  $line" >&2; done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
