#!/usr/bin/env python3
"""What a sandbox's network costs, in one run:
  1. warm `msb create` + first `msb exec -- true` with the network (passt, its nftables
     table, the card; the default) and with `--no-net`, alternating rounds, medians side
     by side (goal: the network adds <= 20 ms);
  2. TCP throughput guest -> host through a published port: a python sender in the guest
     (the python image: msb image build python) writes N MiB of zeros to the connection
     the host opened to 127.0.0.1:PORT (whole transfer timed).
Traffic stays on the host's loopback.

usage: bench/network.py [--rounds N] [--mebibytes N]   (--mebibytes 0: no throughput part)
       (MSB_BIN default .build/release/msb; MSB_HOME, MSB_ARTIFACTS as usual)
"""
import argparse, os, socket, statistics, subprocess, sys, time

BIN = os.environ.get("MSB_BIN", ".build/release/msb")

def msb(*args, check=True):
    return subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=check)

def create_and_exec(name, extra):
    """Seconds of the warm `msb create`, and of the first `msb exec -- true` after it."""
    start = time.monotonic()
    msb("create", "--name", name, *extra)
    created = time.monotonic()
    msb("exec", name, "--", "true")
    executed = time.monotonic()
    msb("rm", "-f", name)
    return created - start, executed - created

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port

def throughput(mebibytes):
    """The python image's guest sends zeros to the host's connection; whole transfer timed."""
    name = f"bench-net-tp-{os.getpid()}"
    port = free_port()
    msb("create", "--name", name, "--image", "python", "-p", f"{port}:9000")
    sender = ("import socket\n"
              "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind(('0.0.0.0', 9000)); s.listen(1); c, _ = s.accept(); c.recv(1); z = bytes(1 << 20)\n"
              f"for _ in range({mebibytes}): c.sendall(z)\n"
              "c.close()\n")
    try:
        msb("exec", name, "--", "sh", "-c", f"nohup python3 -c \"{sender}\" >/dev/null 2>&1 &")
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=30)
                # Debian 12's passt hands a published connection to the guest only once the
                # host side has sent something: the client speaks first.
                conn.sendall(b"x")
                start = time.monotonic()
                received = 0
                while True:
                    chunk = conn.recv(1 << 20)
                    if not chunk:
                        break
                    received += len(chunk)
                elapsed = time.monotonic() - start
                conn.close()
                if received == 0 and time.monotonic() < deadline:
                    time.sleep(0.2); continue   # the sender was not listening yet
                return received, elapsed
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("throughput: the guest's sender never answered")
                time.sleep(0.2)
    finally:
        msb("rm", "-f", name, check=False)

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--mebibytes", type=int, default=256)
    args = parser.parse_args()
    # Both templates exist before timing (with and without a card).
    for extra in ([], ["--no-net"]):
        create_and_exec(f"bench-net-warm-{os.getpid()}", extra)
    with_net, without = [], []
    for round in range(args.rounds):
        with_net.append(create_and_exec(f"bench-net-{os.getpid()}-{round}", []))
        without.append(create_and_exec(f"bench-nonet-{os.getpid()}-{round}", ["--no-net"]))
    def median_ms(samples, part):
        return statistics.median(part(sample) for sample in samples) * 1000
    for label, part in (("warm create", lambda s: s[0]), ("first exec", lambda s: s[1]),
                        ("create + first exec", lambda s: s[0] + s[1])):
        a, b = median_ms(with_net, part), median_ms(without, part)
        print(f"{label + ':':21} network on {a:6.1f} ms, --no-net {b:6.1f} ms, the network adds {a - b:6.1f} ms (x{a / b:.2f})")
    print(f"(medians of {args.rounds} alternating rounds; goal: the network adds <= 20 ms to a warm create)")
    if args.mebibytes == 0:
        return
    received, elapsed = throughput(args.mebibytes)
    print(f"TCP guest -> host through a published port:      {received / elapsed / (1 << 20):7.1f} MiB/s "
          f"({received >> 20} MiB in {elapsed:.2f} s)")

if __name__ == "__main__":
    main()
