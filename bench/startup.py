#!/usr/bin/env python3
"""Whole-process start-up of the CLI, before/after, in one run.

Prints the median of N runs (default 30) of
  - `msb --version`                  (process start and exit: what every command pays)
  - `msb exec NAME -- true`          (on one running busybox sandbox)
for MSB_BIN (the build under test) and, when given, MSB_BASELINE_BIN (e.g. a release
build of an earlier commit), runs alternating so machine noise hits both alike, with
their ratio. Goals (issue 9): --version <= 6 ms, exec <= 15 ms under TCG.

Then it splits the exec of MSB_BIN into where the time goes, measured on their own:
  process start    `msb --version`
  connect          connect() to the sandbox's control socket
  supervisor       a hello round trip to the supervisor (no guest involved)
  guest exec       an exec of `true` sent over the raw protocol: supervisor + agent +
                   the guest's fork/exec/wait, under TCG
  msb's own rest   exec total minus the three above (argument parsing, state lookups, ...)

usage: bench/startup.py [--runs N]   (MSB_BIN, MSB_BASELINE_BIN, MSB_ARTIFACTS as usual)
"""
import argparse, os, shutil, socket, statistics, struct, subprocess, tempfile, time

def frame(type_code, request_id, body):
    payload = bytes([type_code]) + struct.pack(">I", request_id) + body
    return struct.pack(">I", len(payload)) + payload

def string(text):
    data = text.encode()
    return struct.pack(">I", len(data)) + data

def strings(items):
    return struct.pack(">I", len(items)) + b"".join(string(s) for s in items)

HELLO = frame(1, 7, struct.pack(">I", 2) + string("bench"))
# exec: argv, env, workdir, attachStdin, tty, rows, cols, timeout ms, user
EXEC_TRUE = frame(3, 1, strings(["true"]) + strings([]) + string("") + bytes([0, 0]) + struct.pack(">HHQ", 24, 80, 0) + string(""))

def read_frame(sock, buffer):
    while True:
        if len(buffer) >= 4:
            (length,) = struct.unpack(">I", buffer[:4])
            if len(buffer) >= 4 + length:
                payload = buffer[4:4 + length]
                del buffer[:4 + length]
                return payload[0]
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the supervisor closed the connection")
        buffer.extend(chunk)

def timed(argv, env):
    start = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.monotonic() - start

def median_ms(values):
    return statistics.median(values) * 1000

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    opts = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.environ.get("MSB_BIN") or os.path.join(root, ".build/release/msb")
    baseline = os.environ.get("MSB_BASELINE_BIN")
    for path in filter(None, [binary, baseline]):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{path} not found: build it first (swift build -c release) or set MSB_BIN / MSB_BASELINE_BIN")
    home = tempfile.mkdtemp(prefix="msb-start-", dir="/tmp")
    env = dict(os.environ, MSB_HOME=home, MSB_ACCEL=os.environ.get("MSB_ACCEL", "tcg"))
    env.pop("MSB_SERVER_URL", None)
    name = f"start-{os.getpid()}"
    subprocess.run([binary, "create", "--name", name], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    builds = [("after", binary)] + ([("before", baseline)] if baseline else [])
    results = {label: {"version": [], "exec": []} for label, _ in builds}
    try:
        for label, path in builds:  # warm the page cache once
            timed([path, "--version"], env)
            timed([path, "exec", name, "--", "true"], env)
        for _ in range(opts.runs):
            for label, path in builds:
                results[label]["version"].append(timed([path, "--version"], env))
                results[label]["exec"].append(timed([path, "exec", name, "--", "true"], env))
        control = os.path.join(home, "sandboxes", name, "ctl.sock")
        connects, pings, execs = [], [], []
        for _ in range(opts.runs):
            start = time.monotonic()
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(control)
            connected = time.monotonic()
            buffer = bytearray()
            sock.sendall(HELLO)
            read_frame(sock, buffer)
            pinged = time.monotonic()
            sock.sendall(EXEC_TRUE)
            while read_frame(sock, buffer) not in (11, 12):  # exited, execFailed
                pass
            done = time.monotonic()
            sock.close()
            connects.append(connected - start); pings.append(pinged - connected); execs.append(done - pinged)
    finally:
        subprocess.run([binary, "rm", "-f", name], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(home, ignore_errors=True)

    print(f"whole-process medians over {opts.runs} runs (accelerator: {env['MSB_ACCEL']})")
    print(f"{'':28}{'after':>10}" + (f"{'before':>10}{'after/before':>14}" if baseline else "") + f"{'goal':>10}")
    for key, title, goal in [("version", "msb --version", "<= 6 ms"), ("exec", "msb exec NAME -- true", "<= 15 ms")]:
        after = median_ms(results["after"][key])
        line = f"{title:28}{after:8.1f}ms"
        if baseline:
            before = median_ms(results["before"][key])
            line += f"{before:8.1f}ms{after / before:14.2f}"
        print(line + f"{goal:>10}")
    exec_total = median_ms(results["after"]["exec"])
    start, connect, ping, guest = (median_ms(results["after"]["version"]), median_ms(connects), median_ms(pings), median_ms(execs))
    print("where `msb exec NAME -- true` spends its time (after):")
    for title, value in [("process start (--version)", start), ("connect to the supervisor", connect),
                         ("supervisor round trip", ping), ("guest exec of true (agent + fork/exec)", guest),
                         ("msb's own rest", exec_total - start - connect - ping - guest)]:
        print(f"  {title:40}{value:8.2f} ms")

if __name__ == "__main__":
    main()
