"""Processes and ports of the private servers, found through /proc.

An instance's processes are the live (non-zombie) ones that work in its temporary
directory or name it on their command line: Dovecot's run in its base_dir, login chroot
or a user's home, Postfix's in its queue directory, the supervisors in the root.
"""

import contextlib
import os
import random
import shutil
import signal
import socket
import tempfile
import time

HOST = "127.0.0.1"


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(count):
    """Free TCP ports on 127.0.0.1, chosen at random below the kernel's ephemeral range so
    that no outgoing connection takes one as its source port while the server is stopped
    (a restart keeps its ports). A clash with another instance is retried by start()."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    ports = []
    if ephemeral_low > 12000:
        rng = random.SystemRandom()
        for _ in range(200):
            port = rng.randrange(10000, ephemeral_low)
            if port not in ports and _port_free(port):
                ports.append(port)
                if len(ports) == count:
                    return ports
    socks = []
    try:  # the kernel's choice, as a last resort
        while len(ports) < count:
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def listening_ports():
    """Ports in LISTEN state on 127.0.0.1 or 0.0.0.0, read from /proc (no connection made)."""
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            addr, port = fields[1].split(":")
            if fields[3] == "0A" and addr in ("0100007F", "00000000"):
                ports.add(int(port, 16))
    return ports


def proc_info(pid):
    """(state, cwd, cmdline) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        state = stat[stat.rindex(b")") + 2:].split()[0].decode()
        cwd = os.readlink(f"/proc/{pid}/cwd")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    return state, cwd, cmdline


def processes_under(*roots):
    """Live (non-zombie) processes working in one of `roots` or naming it on their command
    line; one scan of /proc for them all."""
    found = []
    prefixes = tuple(root.rstrip("/") + "/" for root in roots)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        info = proc_info(int(entry))
        if info is None or info[0] == "Z":
            continue
        state, cwd, cmdline = info
        if cwd in roots or cwd.startswith(prefixes) or any(r in cmdline for r in roots):
            found.append(int(entry))
    return found


def kill_pids(pids, sig=signal.SIGKILL):
    """Sends sig to each of pids that still exists."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _owner_alive(owner_file):
    try:
        with open(owner_file) as f:
            pid, start = f.read().split()
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].split()[19].decode() == start
    except (OSError, ValueError, IndexError):
        return False


def own_start_time():
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    return stat[stat.rindex(b")") + 2:].split()[19].decode()


def reap_stale_instances(base_dir=None, prefix="mfh-", keep_days=1.0):
    """Kill what is left of instances whose test process died without cleaning up (their
    supervisors normally do that) and remove their directories; one marked KEEP (a failed
    test's, for a post-mortem) goes once the mark is `keep_days` old."""
    base_dir = base_dir or tempfile.gettempdir()
    stale = []
    for name in os.listdir(base_dir):
        root = os.path.join(base_dir, name)
        owner = os.path.join(root, "owner")
        if name.startswith(prefix) and os.path.exists(owner) and not _owner_alive(owner):
            stale.append(root)
    if stale:
        kill_pids(processes_under(*stale))
    for root in stale:
        keep = os.path.join(root, "KEEP")
        with contextlib.suppress(FileNotFoundError):
            if time.time() - os.path.getmtime(keep) < keep_days * 86400:
                continue
        shutil.rmtree(root, ignore_errors=True)
