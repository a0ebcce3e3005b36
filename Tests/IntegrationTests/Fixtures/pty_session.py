#!/usr/bin/env python3
"""Drives a program on a real pseudo-terminal for the integration tests.

usage: pty_session.py STEPS_JSON -- PROGRAM [ARGS...]
STEPS_JSON is a list of steps:
  ["send", TEXT]           write TEXT (may hold control characters) to the terminal
  ["expect", TEXT, SECS]   wait until TEXT appears in the output after the last match
  ["resize", ROWS, COLS]   set the terminal size (the program gets SIGWINCH)
  ["sleep", SECS]
Prints one JSON object: {"exit": code, "output": transcript, "restored": bool, "failed": step or null}.
"restored" says whether the terminal's settings after exit equal those before start.
"""
import fcntl, json, os, pty, select, signal, struct, sys, termios, time

def main():
    steps = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    before = termios.tcgetattr(slave)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.close(master)
        os.execvpe(argv[0], argv, os.environ)
    output = b""
    cursor = 0
    failed = None

    def pump(timeout):
        """Reads what arrives within timeout; False when nothing did or the terminal closed."""
        nonlocal output
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(master, 65536)
        except OSError:
            return False
        output += data
        return bool(data)

    for step in steps:
        kind = step[0]
        if kind == "send":
            os.write(master, step[1].encode())
        elif kind == "expect":
            needle, deadline = step[1].encode(), time.monotonic() + step[2]
            while output.find(needle, cursor) < 0 and time.monotonic() < deadline:
                pump(0.05)
            found = output.find(needle, cursor)
            if found < 0:
                failed = step
                break
            cursor = found + len(needle)
        elif kind == "resize":
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", step[1], step[2], 0, 0))
        elif kind == "sleep":
            end = time.monotonic() + step[1]
            while time.monotonic() < end:
                pump(0.05)
    code = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        pump(0.05)
    if code is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    while pump(0.1):
        pass
    after = termios.tcgetattr(slave)
    print(json.dumps({"exit": code, "output": output.decode("utf-8", "replace"),
                      "restored": before == after, "failed": failed}))

if __name__ == "__main__":
    main()
