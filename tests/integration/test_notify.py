"""The systemd notify protocol as mailferryd speaks it: the test plays systemd, with a
datagram socket as $NOTIFY_SOCKET (a path, and an abstract "@name" one) and
$WATCHDOG_USEC set, and checks every message: READY=1 once the account has logged in
(before a large first sync is over, and also when the server cannot be reached),
STATUS= lines, WATCHDOG=1 at half the interval, RELOADING=1 with MONOTONIC_USEC on
SIGHUP followed by READY=1 again, STOPPING=1 on SIGTERM."""

import os
import signal
import socket
import threading
import time

import pytest
from daemon_mail import count_files, message, reset_server
from waiting import wait_for

POLL = 3600


class Systemd:
    """The receiving end of $NOTIFY_SOCKET: every datagram with its arrival time."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, text)
        self.closed = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def close(self):
        self.closed = True
        self.thread.join()
        self.sock.close()

    def texts(self):
        return [text for _, text in self.messages]

    def find(self, prefix, after=0.0):
        return [(t, text) for t, text in self.messages if text.startswith(prefix) and t > after]

    def wait(self, prefix, after=0.0, timeout=20.0):
        return wait_for(f"{prefix!r} on the notify socket (got {self.texts()})",
                        lambda: self.find(prefix, after), timeout)[0]


@pytest.fixture(params=["path", "abstract"])
def systemd(request, mf_env):
    if request.param == "path":
        address = str(mf_env.runtime_dir / "notify.sock")
        env_value = address
    else:
        name = f"mailferry-test-{os.getpid()}-{time.time_ns()}"
        address = "\0" + name
        env_value = "@" + name
    s = Systemd(address)
    mf_env.env["NOTIFY_SOCKET"] = env_value
    mf_env.env["WATCHDOG_USEC"] = "1000000"
    yield s
    s.close()


def start(mf_env, **account):
    mf_env.write_config(accounts=[mf_env.account(imap={"poll_interval": POLL, **account})])
    return mf_env.daemon("-v")


def test_the_whole_life(mf_env, mailserver, systemd):
    reset_server(mailserver)
    mailserver.seed("alice", "INBOX", [message(n, "notify test") for n in range(3000)])
    inbox = mf_env.maildir()
    d = start(mf_env)
    systemd.wait("READY=1", timeout=30)
    # ready once logged in: the first sync of 3000 messages is not over yet
    log = d.stderr()
    assert "event=connected" in log
    assert "event=sync down=" not in log
    assert count_files(inbox) < 3000
    wait_for("the first sync", lambda: count_files(inbox) == 3000, timeout=120)
    assert [t for t in systemd.texts() if t == "READY=1"] == ["READY=1"]
    # STATUS= says what each account does, on one line
    statuses = [t for t in systemd.texts() if t.startswith("STATUS=")]
    assert statuses and all("\n" not in t for t in statuses)
    systemd.wait("STATUS=test: idle (NOTIFY)")

    # RELOADING=1 with the monotonic clock, then READY=1 again
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    sent = time.monotonic()
    d.proc.send_signal(signal.SIGHUP)
    _, text = systemd.wait("RELOADING=1", after=sent)
    lines = text.split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
    usec = int(lines[1].split("=", 1)[1])
    assert before * 1e6 <= usec <= time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
    reloading_at, _ = systemd.find("RELOADING=1", after=sent)[0]
    again, _ = systemd.wait("READY=1", after=reloading_at)
    assert again > reloading_at

    # STOPPING=1 on SIGTERM, and a clean exit
    sent = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    systemd.wait("STOPPING=1", after=sent)
    assert d.proc.wait(timeout=20) == 0


def test_watchdog_pings_at_half_the_interval(mf_env, mailserver, systemd):
    reset_server(mailserver)
    d = start(mf_env)
    systemd.wait("READY=1")
    start_at = time.monotonic()
    time.sleep(3.2)
    pings = [t for t, text in systemd.find("WATCHDOG=1") if t >= start_at]
    # WATCHDOG_USEC=1 s: every 0.5 s
    assert 5 <= len(pings) <= 8, pings
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert all(0.35 < g < 0.65 for g in gaps), gaps
    assert d.proc.poll() is None


def test_watchdog_meant_for_another_process(mf_env, mailserver, systemd):
    mf_env.env["WATCHDOG_PID"] = "1"
    reset_server(mailserver)
    start(mf_env)
    systemd.wait("READY=1")
    time.sleep(1.5)
    assert not systemd.find("WATCHDOG=1")


def test_ready_when_the_server_cannot_be_reached(mf_env, mailserver, systemd):
    # a port nothing listens on: the account backs off, and the unit must not stay
    # "activating" until systemd gives up on it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = start(mf_env, port=port)
    systemd.wait("READY=1", timeout=20)
    # logged just after READY=1 is sent, in the same turn of the loop
    wait_for("the backoff", lambda: "event=backoff" in d.stderr(), timeout=10)
    systemd.wait("STATUS=test: backoff")
    assert d.proc.poll() is None
