#!/usr/bin/env python3
"""Start latency and memory of sandboxes restored from a start template, side by side
with a raw QEMU restore of the same template and with a cold boot, in one run.

Prints (medians over alternating rounds, so machine noise hits all alike):
  1. raw QEMU restore: msb's exact QEMU command line of a restored sandbox (read from
     /proc/PID/cmdline), started by hand with the same descriptors, QMP
     migrate-incoming + cont, until the agent answers hello;
  2. warm `msb create` + first `msb exec -- true`, whole processes (goal <= 150 ms and
     <= 1.5 x the raw restore);
  3. `msb run -- true` (create, exec, remove; goal <= 250 ms);
  4. cold `msb create --cold` + first exec, for comparison;
  5. `msb snapshot create` of a running 512 MiB sandbox (goal <= 1 s), and
     `msb create --from SNAP` + first exec beside the warm template start (goal: as fast);
  6. N creates in a row (goal: 20 in <= 5 s), then the PSS of QEMU + supervisor per
     running sandbox (goal <= 40 MiB with 20 running) and whether every one answers exec.

usage: bench/templates.py [--rounds N] [--sandboxes N]
       (MSB_BIN default .build/release/msb; MSB_HOME, MSB_ARTIFACTS as usual)
"""
import argparse, json, os, socket, statistics, struct, subprocess, sys, tempfile, threading, time

def frame(type_code, request_id, body):
    payload = bytes([type_code]) + struct.pack(">I", request_id) + body
    return struct.pack(">I", len(payload)) + payload

HELLO = frame(1, 0, struct.pack(">I", 4) + struct.pack(">I", 5) + b"bench")

def msb(*args, check=True):
    return subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=check)

def timed(*args):
    start = time.monotonic()
    msb(*args)
    return time.monotonic() - start

def qemu_pid(name):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and f"msb-{name}".encode() in argv:
            return int(pid), [a.decode() for a in argv]
    raise SystemExit(f"no QEMU found for sandbox {name}")

def supervisor_pid(name):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
        except OSError:
            continue
        if len(argv) >= 3 and argv[1] == b"_supervise" and argv[2] == name.encode():
            return int(pid)
    return None

def pss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

def drain(sock):
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass

def qmp(sock, command, **arguments):
    message = {"execute": command}
    if arguments:
        message["arguments"] = arguments
    sock.sendall(json.dumps(message).encode() + b"\n")
    while True:
        line = qmp.buffer.split(b"\n", 1)
        if len(line) == 2:
            qmp.buffer = line[1]
            reply = json.loads(line[0])
            if "return" in reply or "error" in reply:
                return reply
            continue
        qmp.buffer += sock.recv(65536)
qmp.buffer = b""

def raw_restore(argv, ram_path, state_path):
    """msb's restore command line run by hand; seconds until the agent answers hello."""
    agent, console, control = socket.socketpair(), socket.socketpair(), socket.socketpair()
    network = socket.socketpair()  # the card's connection (to nowhere here: no passt)
    ram = os.open(ram_path, os.O_RDONLY)
    state = os.open(state_path, os.O_RDONLY)
    wanted = {5: agent[1].fileno(), 6: console[1].fileno(), 7: control[1].fileno(), 10: ram, 11: state}
    if any(a.startswith("stream,id=net0") for a in argv):
        wanted[12] = network[1].fileno()
    def place():
        moved = {target: os.dup(source) + 0 for target, source in wanted.items()}
        for target, source in moved.items():
            os.dup2(source, target)
    start = time.monotonic()
    qemu = subprocess.Popen(argv, preexec_fn=place, pass_fds=list(wanted), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for end in (agent[1], console[1], control[1], network[1]):
        end.close()
    os.close(ram); os.close(state)
    threading.Thread(target=drain, args=(console[0],), daemon=True).start()
    try:
        qmp.buffer = b""
        control[0].recv(65536)
        qmp(control[0], "qmp_capabilities")
        qmp(control[0], "migrate-set-capabilities", capabilities=[{"capability": "x-ignore-shared", "state": True}])
        qmp(control[0], "migrate-incoming", uri="fd:11")
        while qmp(control[0], "query-status")["return"]["status"] == "inmigrate":
            time.sleep(0.001)
        qmp(control[0], "cont")
        agent[0].setblocking(False)
        last = 0.0
        while True:
            now = time.monotonic()
            if now - start > 30:
                raise SystemExit("raw restore: no answer in 30 s")
            if now - last > 0.05:
                agent[0].send(HELLO); last = now
            try:
                data = agent[0].recv(65536)
            except BlockingIOError:
                time.sleep(0.001); continue
            if len(data) >= 5 and data[4] == 2:
                return time.monotonic() - start
    finally:
        qemu.kill(); qemu.wait()

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sandboxes", type=int, default=20)
    options = parser.parse_args()
    home = os.environ.get("MSB_HOME") or os.path.expanduser("~/.msb")
    templates = os.environ.get("MSB_TEMPLATES") or os.path.join(home, "templates")
    tag = f"b{os.getpid() % 10000}"

    # A warm template, and a restored sandbox whose QEMU command line is the raw baseline.
    msb("create", "--name", f"{tag}-probe")
    boot = next(s for s in json.loads(msb("ls", "--format", "json").stdout) if s["name"] == f"{tag}-probe")["boot"]
    if not boot.startswith("template "):
        raise SystemExit(f"the probe sandbox did not start from a template: {boot}")
    key = boot.split()[1]
    _, argv = qemu_pid(f"{tag}-probe")
    msb("rm", "-f", f"{tag}-probe")
    ram, state = os.path.join(templates, key, "memory.ram"), os.path.join(templates, key, "state.bin")

    # The snapshot source: a running sandbox with a process and 32 MiB of data in memory.
    source = f"{tag}-src"
    msb("create", "--name", source)
    msb("exec", source, "--", "sh", "-c", "head -c 33554432 /dev/urandom > /tmp/data; "
        "nohup sh -c 'while true; do sleep 1; done' >/dev/null 2>&1 &")

    raw, warm, run, cold, snapshot, fork = [], [], [], [], [], []
    for index in range(options.rounds):
        raw.append(raw_restore(argv, ram, state))
        name = f"{tag}-w{index}"
        start = time.monotonic()
        msb("create", "--name", name); msb("exec", name, "--", "true")
        warm.append(time.monotonic() - start)
        msb("rm", "-f", name)
        run.append(timed("run", "--", "true"))
        snapshot.append(timed("snapshot", "create", source, f"{tag}-s{index}"))
        name = f"{tag}-f{index}"
        start = time.monotonic()
        msb("create", "--name", name, "--from", f"{tag}-s{index}"); msb("exec", name, "--", "true")
        fork.append(time.monotonic() - start)
        msb("rm", "-f", name)
        msb("snapshot", "rm", f"{tag}-s{index}")
        if index < 3:
            name = f"{tag}-c{index}"
            start = time.monotonic()
            msb("create", "--name", name, "--cold"); msb("exec", name, "--", "true")
            cold.append(time.monotonic() - start)
            msb("rm", "-f", name)

    median = lambda values: statistics.median(values) * 1000
    print(f"template {key}, {options.rounds} rounds (medians)")
    print(f"  raw QEMU restore to agent hello    {median(raw):8.0f} ms")
    print(f"  msb create + first exec (warm)     {median(warm):8.0f} ms   ratio {statistics.median(warm) / statistics.median(raw):.2f} (goal <= 1.5, <= 150 ms)")
    print(f"  msb run -- true                    {median(run):8.0f} ms   (goal <= 250 ms)")
    print(f"  msb create --cold + first exec     {median(cold):8.0f} ms   ({statistics.median(cold) / statistics.median(warm):.1f} x warm)")
    print(f"  msb snapshot create (512 MiB)      {median(snapshot):8.0f} ms   (goal <= 1000 ms)")
    print(f"  msb create --from + first exec     {median(fork):8.0f} ms   ratio {statistics.median(fork) / statistics.median(warm):.2f} to the warm start (goal: as fast)")
    msb("rm", "-f", source)

    names = [f"{tag}-m{index}" for index in range(options.sandboxes)]
    start = time.monotonic()
    for name in names:
        msb("create", "--name", name)
    creates = time.monotonic() - start
    try:
        time.sleep(2)  # let the guests settle
        total = 0
        for name in names:
            pid, _ = qemu_pid(name)
            total += pss_kib(pid) + pss_kib(supervisor_pid(name) or 0)
        answering = sum(1 for name in names if msb("exec", name, "--", "true", check=False).returncode == 0)
        print(f"  {options.sandboxes} creates in a row                {creates:8.1f} s    (goal: 20 in <= 5 s)")
        print(f"  PSS per sandbox, {options.sandboxes} running        {total / 1024 / len(names):8.1f} MiB (QEMU + supervisor; goal <= 40 MiB)")
        print(f"  answering exec                     {answering:8d} of {len(names)}")
    finally:
        msb("rm", "-f", *names, check=False)

if __name__ == "__main__":
    BIN = os.environ.get("MSB_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "release", "msb")
    main()
