#!/usr/bin/env python3
"""Boot and exec latency of msb, side by side with raw QEMU, in one run.

Prints:
  1. raw QEMU boot-to-agent: the exact QEMU command line msb uses (read from a
     running sandbox's /proc/PID/cmdline), started directly, timed until the agent
     answers a hello frame on the virtio-serial socket;
  2. `msb create` + first `msb exec -- true`, timed as one;
  3. their ratio (goal <= 1.15);
  4. the median whole-process time of `msb exec NAME -- true` on a running sandbox
     (goal <= 30 ms).
Rounds alternate raw and msb so machine noise hits both alike.

usage: bench/boot.py [--rounds N] [--execs N]   (MSB_BIN, MSB_HOME, MSB_ARTIFACTS as usual)
"""
import argparse, os, shutil, socket, statistics, struct, subprocess, sys, tempfile, time

def frame(type_code, request_id, body):
    payload = bytes([type_code]) + struct.pack(">I", request_id) + body
    return struct.pack(">I", len(payload)) + payload

HELLO = frame(1, 0, struct.pack(">I", 1) + struct.pack(">I", 5) + b"bench")

def msb(binary, *args, check=True):
    return subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=check)

def qemu_cmdline(name):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and f"msb-{name}".encode() in argv:
            return [a.decode() for a in argv]
    raise SystemExit(f"no QEMU found for sandbox {name}")

def raw_boot(argv, sandbox_dir, workdir):
    """Runs msb's QEMU command with its sockets moved to workdir; seconds to first hello reply."""
    argv = [a.replace(sandbox_dir, workdir) for a in argv]
    sock_path = os.path.join(workdir, "agent.sock")
    start = time.monotonic()
    qemu = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            try:
                s = socket.socket(socket.AF_UNIX); s.connect(sock_path); break
            except OSError:
                s.close(); time.sleep(0.002)
        s.settimeout(0.05)
        while True:
            s.sendall(HELLO)
            try:
                if s.recv(64):
                    return time.monotonic() - start
            except socket.timeout:
                pass
            if time.monotonic() - start > 120:
                raise SystemExit("raw QEMU: agent did not answer in 120 s")
    finally:
        qemu.kill(); qemu.wait()
        for f in os.listdir(workdir):
            os.unlink(os.path.join(workdir, f))

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--execs", type=int, default=30)
    opts = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.environ.get("MSB_BIN") or os.path.join(root, ".build/release/msb")
    home = os.environ.setdefault("MSB_HOME", tempfile.mkdtemp(prefix="msb-bench-", dir="/tmp"))
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"build msb first (swift build -c release) or set MSB_BIN; {binary} not found")

    probe = f"bench-probe-{os.getpid()}"
    msb(binary, "create", "--name", probe)
    argv = qemu_cmdline(probe)
    sandbox_dir = os.path.join(home, "sandboxes", probe)
    msb(binary, "rm", "-f", probe)

    workdir = tempfile.mkdtemp(prefix="msb-raw-", dir="/tmp")
    raw, full = [], []
    try:
        for i in range(opts.rounds):
            raw.append(raw_boot(argv, sandbox_dir, workdir))
            name = f"bench-{os.getpid()}-{i}"
            start = time.monotonic()
            msb(binary, "create", "--name", name)
            msb(binary, "exec", name, "--", "true")
            full.append(time.monotonic() - start)
            msb(binary, "rm", "-f", name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    name = f"bench-exec-{os.getpid()}"
    msb(binary, "create", "--name", name)
    try:
        execs = []
        for _ in range(opts.execs):
            start = time.monotonic()
            msb(binary, "exec", name, "--", "true")
            execs.append(time.monotonic() - start)
    finally:
        msb(binary, "rm", "-f", name)

    raw_median, full_median = statistics.median(raw), statistics.median(full)
    print(f"rounds: {opts.rounds}, accelerator: see 'msb ls --format json' (TCG on hosts without usable KVM)")
    print(f"raw QEMU boot-to-agent           median {raw_median*1000:7.0f} ms  (min {min(raw)*1000:.0f}, max {max(raw)*1000:.0f})")
    print(f"msb create + first exec -- true  median {full_median*1000:7.0f} ms  (min {min(full)*1000:.0f}, max {max(full)*1000:.0f})")
    print(f"ratio msb / raw                  {full_median/raw_median:7.2f}  (goal <= 1.15)")
    print(f"msb exec NAME -- true            median {statistics.median(execs)*1000:7.1f} ms over {opts.execs} runs (goal <= 30 ms)")

if __name__ == "__main__":
    main()
