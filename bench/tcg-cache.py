#!/usr/bin/env python3
"""TCG's translated-code cache (`-accel tcg,tb-size=N`): time of a code-heavy exec and
QEMU's memory afterwards, for msb's default (64 MiB), QEMU 7.2's own default (1 GiB) and
a smaller cache, side by side in one run. Each size gets a fresh python sandbox
(MSB_TCG_CACHE_MIB), the same workload a few times (whole `msb exec` processes), then
the QEMU's PSS.

usage: bench/tcg-cache.py [--rounds N] [--sizes 64,1024,32]
       (needs the python image: msb image build python; MSB_BIN default .build/release/msb)
"""
import argparse, os, statistics, subprocess, time

WORKLOAD = ("python3 -c \"import json, decimal, email.parser, http.client, xml.dom.minidom, sqlite3, "
            "unittest, argparse, asyncio, csv, difflib; print(sum(i*i for i in range(200000)))\"")

def msb(*args, env=None):
    return subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True, env=env)

def qemu_pid(name):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and f"msb-{name}".encode() in argv:
            return int(pid)
    raise SystemExit(f"no QEMU for {name}")

def pss_mib(pid):
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0

def measure(size, rounds, tag):
    env = dict(os.environ, MSB_TCG_CACHE_MIB=str(size))
    name = f"{tag}-{size}"
    msb("create", "--name", name, "--image", "python", env=env)
    try:
        times = []
        for _ in range(rounds):
            start = time.monotonic()
            msb("exec", name, "--", "sh", "-c", WORKLOAD)
            times.append(time.monotonic() - start)
        return times[0], statistics.median(times[1:] or times), pss_mib(qemu_pid(name))
    finally:
        msb("rm", "-f", name)

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sizes", default="64,1024,32")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    tag = f"tb{os.getpid() % 10000}"
    results = {size: measure(size, options.rounds, tag) for size in sizes}
    baseline = results.get(1024) or results[sizes[0]]
    print(f"code-heavy exec, {options.rounds} runs per size (first run, then median of the rest); ratios to 1024 MiB (QEMU's default)")
    for size, (first, warm, pss) in results.items():
        print(f"  tb-size {size:5d} MiB: first {first * 1000:6.0f} ms, warm {warm * 1000:6.0f} ms (x{warm / baseline[1]:.2f}), "
              f"QEMU PSS {pss:6.1f} MiB (x{pss / baseline[2]:.2f})")

if __name__ == "__main__":
    BIN = os.environ.get("MSB_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "release", "msb")
    main()
