#!/usr/bin/env python3
"""Latency of `sandbox.command.run` through msb server under concurrent clients, in one run.

Starts `msb server start --dev` on 127.0.0.1 (own MSB_HOME, port chosen by the kernel),
boots 4 base sandboxes, then times `sandbox.command.run` of `true` over keep-alive HTTP:
  1. one client on one sandbox (the baseline);
  2. 8 concurrent clients on one sandbox;
  3. 8 concurrent clients spread over 4 sandboxes (2 each).
Prints p50/p99 per phase, their ratio to the baseline, the throughput, and the server
process's own CPU time per call (its overhead, apart from the guests); then stops the
server, which stops its sandboxes.

usage: bench/server.py [--calls N]   (MSB_BIN and MSB_ARTIFACTS as usual)
"""
import argparse, http.client, json, os, shutil, statistics, subprocess, sys, tempfile, threading, time, uuid

def cpu_seconds(pid):
    """User + system CPU time of a process (its threads included), from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

class Client:
    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, params):
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": str(uuid.uuid4())})
        self.connection.request("POST", "/api/v1/rpc", body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = json.loads(response.read())
        if "error" in data:
            raise SystemExit(f"{method} failed: {data['error']['message']}")
        return data["result"]

def run_phase(port, sandboxes, clients, calls):
    """Each client runs `calls` commands on its sandbox; returns all latencies (ms) and wall seconds."""
    latencies, lock = [], threading.Lock()
    start_gate = threading.Barrier(clients)
    def work(index):
        client = Client(port)
        name = sandboxes[index % len(sandboxes)]
        mine = []
        start_gate.wait()
        for _ in range(calls):
            t = time.perf_counter()
            result = client.call("sandbox.command.run", {"sandbox": name, "command": "true", "args": []})
            mine.append((time.perf_counter() - t) * 1000)
            assert result["exit_code"] == 0, result
        with lock:
            latencies.extend(mine)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    wall = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    return latencies, time.perf_counter() - wall

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=25, help="commands per client per phase")
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.environ.get("MSB_BIN") or os.path.join(root, ".build/release/msb")
    home = tempfile.mkdtemp(prefix="msb-bench-srv-", dir="/tmp")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "MSB_HOME": home}
    if os.environ.get("MSB_ARTIFACTS"): env["MSB_ARTIFACTS"] = os.environ["MSB_ARTIFACTS"]
    log = open(os.path.join(home, "bench-server.log"), "w")
    server = subprocess.Popen([binary, "server", "start", "--dev", "--port", "0"], env=env, stdout=log, stderr=log)
    try:
        pid_file = os.path.join(home, "server", "server.json")
        deadline = time.time() + 30
        while not (os.path.exists(pid_file) and json.load(open(pid_file))["pid"] == server.pid):
            if time.time() > deadline: raise SystemExit("the server did not start; see " + log.name)
            time.sleep(0.05)
        port = int(json.load(open(pid_file))["url"].rsplit(":", 1)[1])
        sandboxes = [f"bench-{i}" for i in range(4)]
        setup = Client(port)
        for name in sandboxes:
            setup.call("sandbox.start", {"sandbox": name, "config": {"memory": 256, "cpus": 1}})
        for name in sandboxes:  # warm every sandbox's exec path
            for _ in range(3): setup.call("sandbox.command.run", {"sandbox": name, "command": "true", "args": []})

        print(f"msb server bench: sandbox.command.run of `true`, {args.calls} calls per client, {os.cpu_count()} host cores")
        accelerator = json.loads(subprocess.run([binary, "ls", "--format", "json"], env={**env, "MSB_HOME": home + "/namespaces/default"},
                                                capture_output=True, text=True).stdout or "[]")
        print(f"guests run on: {', '.join(sorted({a.get('accelerator') or '?' for a in accelerator}))}")
        print(f"{'phase':<32} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'p50 x':>7} {'p99 x':>7} {'calls/s':>8} {'server CPU ms/call':>19}")
        baseline = None
        for label, targets, clients in [("1 client, 1 sandbox", sandboxes[:1], 1),
                                        ("8 clients, 1 sandbox", sandboxes[:1], 8),
                                        ("8 clients, 4 sandboxes", sandboxes, 8)]:
            cpu_before = cpu_seconds(server.pid)
            latencies, wall = run_phase(port, targets, clients, args.calls if clients > 1 else args.calls * 2)
            server_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / len(latencies)
            p50, p99 = statistics.median(latencies), percentile(latencies, 99)
            baseline = baseline or (p50, p99)
            print(f"{label:<32} {len(latencies):>6} {p50:>8.1f} {p99:>8.1f} {p50 / baseline[0]:>7.2f} {p99 / baseline[1]:>7.2f} {len(latencies) / wall:>8.1f} {server_ms:>19.2f}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(home, ignore_errors=True)

if __name__ == "__main__":
    main()
