"""Run one server master process and guarantee that all of its processes end with us.

    /usr/bin/python3 supervise.py -- COMMAND [ARG...]

The harness starts this with stdin a pipe it holds open. The supervisor
- becomes a child subreaper, so every process the server forks stays our descendant
  even when its parent exits (and is reaped here, not left as a zombie under init);
- starts COMMAND (which must stay in the foreground);
- on SIGTERM, SIGINT, SIGHUP, on EOF of stdin (the harness died, however it died) or when
  COMMAND exits: sends SIGTERM to COMMAND, waits up to --grace seconds for every
  descendant to end, SIGKILLs the rest, reaps them all and exits with COMMAND's status
  (128+signal when it was killed by one).

stdout and stderr are inherited by COMMAND: the harness points them at a log file.
"""

import argparse
import contextlib
import ctypes
import os
import selectors
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def _prctl(option, value):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def descendants(root_pid):
    """Live (non-zombie) descendants of root_pid, from one scan of /proc."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(b")") + 2:].split()
        if fields[0] == b"Z":
            continue
        parent[int(entry)] = int(fields[1])
    found = []
    for pid in parent:
        p = pid
        while p in parent and p != root_pid:
            p = parent[p]
        if p == root_pid and pid != root_pid:
            found.append(pid)
    return found


EXITED = {}  # pid -> wait status of every child reaped so far


def reap():
    """Collect every exited child (ours and the orphans handed to us)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        EXITED[pid] = status


def kill_all(sig):
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def shut_down(master_pid, grace, term_all):
    """Stop the master (or with term_all every process at once), then SIGKILL whatever is
    left after `grace` seconds; returns once no descendant lives."""
    signaled = set()
    if master_pid not in EXITED:
        os.kill(master_pid, signal.SIGTERM)
        signaled.add(master_pid)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        alive = descendants(os.getpid())
        if not alive:
            return
        if term_all:
            # Also every process started since the last round: a master that has not yet
            # handled its SIGTERM may replace a child that just ended by a new one.
            for pid in set(alive) - signaled:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                signaled.add(pid)
        time.sleep(0.01)
    deadline = time.monotonic() + 10  # a process stuck in the kernel cannot hold us forever
    while time.monotonic() < deadline:
        kill_all(signal.SIGKILL)
        time.sleep(0.01)
        reap()
        if not descendants(os.getpid()):
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grace", type=float, default=5.0)
    ap.add_argument("--term-all", action="store_true",
                    help="on stop, SIGTERM every process at once, not just the master")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command")

    # No PR_SET_PDEATHSIG: it fires when the *thread* that started us ends, which would
    # stop a server started from a short-lived thread. The stdin pipe tells a process's
    # death reliably.
    _prctl(PR_SET_CHILD_SUBREAPER, 1)

    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, lambda *_: None)

    master = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)])
    sel = selectors.DefaultSelector()
    sel.register(rfd, selectors.EVENT_READ, "signal")
    try:
        sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    except (PermissionError, ValueError):
        pass  # stdin is not a pipe (run by hand): only signals stop us
    stopping = False
    while not stopping:
        for key, _ in sel.select(timeout=1.0):
            data = os.read(key.fd, 512)
            if key.data == "stdin" and not data:
                stopping = True  # the harness is gone
            elif key.data == "signal" and any(s != signal.SIGCHLD for s in data):
                stopping = True
        reap()
        if master in EXITED:
            stopping = True
    shut_down(master, args.grace, args.term_all)
    reap()
    if master not in EXITED:  # a zombie already counts as gone for descendants()
        EXITED[master] = os.waitpid(master, 0)[1]
    code = os.waitstatus_to_exitcode(EXITED[master])
    sys.exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
