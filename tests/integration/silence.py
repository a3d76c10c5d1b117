"""Connections that die without a word, as after a suspend or behind a router that forgot
them: the server's IMAP processes behind the daemon's connections are frozen (SIGSTOP), so
nothing answers on them while new connections are served as usual."""

import re
import signal

from harness.procs import kill_pids


def imap_sessions(mailserver, user):
    """pid -> what the server's IMAP process for `user` is doing: "" between commands, else
    the command (Dovecot's verbose_proctitle: `imap [alice 127.0.0.1 IDLE]`)."""
    out = {}
    for pid in mailserver.processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        m = re.search(r"/imap \[(\S+) \S+ ?([^\]]*)\]", title)
        if m and m.group(1) == user:
            out[pid] = m.group(2).strip()
    return out


def freeze_quiet(mailserver, user):
    """SIGSTOP every IMAP process of `user` at a moment when none is inside a command other
    than IDLE (a frozen command could hold a mailbox lock that delivery then waits for).
    Returns {pid: command} of the frozen ones, or {} (nothing frozen) when one was busy."""
    sessions = imap_sessions(mailserver, user)
    if not sessions or any(cmd not in ("", "IDLE") for cmd in sessions.values()):
        return {}
    kill_pids(sessions, signal.SIGSTOP)
    frozen = {pid: cmd for pid, cmd in imap_sessions(mailserver, user).items()
              if pid in sessions}
    if any(cmd not in ("", "IDLE") for cmd in frozen.values()):
        thaw(frozen)
        return {}
    return frozen


def thaw(pids):
    kill_pids(pids, signal.SIGCONT)
