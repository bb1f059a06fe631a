"""Run a command, and end its whole process group as soon as standard input reaches end-of-file.

    python tether.py COMMAND [ARG...]

The test process starts this in a new process group (``Bun.spawn(..., {detached: true, stdin: "pipe"})``)
and keeps the write end of the pipe. However that process ends (tests done, a crash, SIGKILL, a CI
timeout), the kernel closes the pipe, this script reads EOF and SIGKILLs the group: the command and
anything it started. bun test runs no ``process.on("exit")`` handler (bun 1.4.5), so this is what keeps a
model server or a pip build from outliving the tests. A normal stop signals the group itself.
Plain standard library. Run it with a real interpreter (test/.venv/bin/python), not a pyenv shim, which
may run Python as its own child instead of exec'ing it: the group leader would then be the shim's shell.
"""

import os
import signal
import subprocess
import sys
import threading


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python tether.py COMMAND [ARG...]")
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)  # not started as a group leader: lead a group of our own, never the caller's
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)

    def watch() -> None:
        sys.stdin.buffer.read()  # returns at EOF: whoever started us is gone (or let go on purpose)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()
    code = child.wait()
    sys.stdout.flush()
    # os._exit, not sys.exit: interpreter shutdown aborts while the watcher thread is blocked reading stdin.
    # Killed by signal N: exit 128+N, as a shell reports it.
    os._exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
