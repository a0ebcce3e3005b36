#!/usr/bin/env python3
"""Offline image figures, printed side by side in one run:
  - time to build each offline image (msb image build --force NAME);
  - time of the first `python3 -c pass` in a fresh python sandbox vs a warm one
    (median of --runs warm runs in the same sandbox).

usage: bench/images.py [--runs N] [--skip-build]   (MSB_BIN, MSB_HOME, MSB_ARTIFACTS as usual)
"""
import argparse, os, statistics, subprocess, tempfile, time

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-build", action="store_true", help="reuse built images instead of timing builds")
    opts = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.environ.get("MSB_BIN") or os.path.join(root, ".build/release/msb")
    os.environ.setdefault("MSB_HOME", tempfile.mkdtemp(prefix="msb-bench-", dir="/tmp"))

    def msb(*args):
        return subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)

    def timed(*args):
        start = time.monotonic()
        msb(*args)
        return time.monotonic() - start

    builds = {}
    for image in ("python", "node"):
        if opts.skip_build:
            msb("image", "build", image)
        else:
            builds[image] = timed("image", "build", "--force", image)

    name = f"bench-py-{os.getpid()}"
    msb("create", "--name", name, "--image", "python")
    try:
        first = timed("exec", name, "--", "python3", "-c", "pass")
        warm = [timed("exec", name, "--", "python3", "-c", "pass") for _ in range(opts.runs)]
    finally:
        msb("rm", "-f", name)

    for image, seconds in builds.items():
        print(f"build image {image:7}                      {seconds:7.1f} s")
    print(f"python3 -c pass, first in a fresh sandbox  {first*1000:7.0f} ms")
    print(f"python3 -c pass, warm (median of {opts.runs:2})       {statistics.median(warm)*1000:7.0f} ms")
    print(f"ratio first / warm                         {first/statistics.median(warm):7.2f}")

if __name__ == "__main__":
    main()
