"""A wall clock that jumps makes the daemon sync at once. A resume from suspend looks so to
a program: the real-time clock has moved on by the time slept, the monotonic clock (libuv's
loop time) has not, and every connection open before the sleep may be dead without a word.

The daemon runs under libfaketime (only the daemon: Dovecot keeps the real time) with the
monotonic clock left real, its wall-clock offset read from a file the test rewrites. Its
connections die silently as in a suspend: the server's IMAP processes behind them are
frozen (SIGSTOP, tests/integration/silence.py), so nothing answers while new connections
are served as usual. A message then reaches the server; push cannot tell, polling is an
hour away and push would only renew its IDLE in minutes (`keepalive`, test_keepalive.py). After the jump, forwards and backwards,
the daemon must see it within one clock check (daemon/account.c, CLOCK_CHECK_MS, 30 s) and
then fetch the message on fresh connections, without first waiting out the dead ones (the
account's `timeout`); then push must work again. A POP3 account fetches at the jump too.
About 35 s per case, most of it waiting for the clock check.

Under ASan the sanitizer's runtime is preloaded before libfaketime, as ASan requires.
"""

import contextlib
import glob
import os
import re
import subprocess

import pytest
from daemon_mail import files, message, push_and_state
from harness.corpus import crlf
from silence import freeze_quiet, thaw
from waiting import wait_for

POLL = 3600  # seconds: nothing in this test arrives by polling
CLOCK_CHECK_S = 30  # daemon/account.c CLOCK_CHECK_MS
# The account's IMAP timeout: how long a connection that went silent is waited for. The
# default (60 s) would only make the test a minute longer.
IMAP_TIMEOUT = 10
JUMP_S = 2 * 3600  # the harness's certificates are valid from a day before they were made
INBOX_DOWN = re.compile(r'folder="INBOX" event=synced down=(\d+) ')
JUMP = re.compile(r"account=test event=clock-jump seconds=(-?\d+): syncing")


def faketime_library():
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime is not installed (scripts/deps.list: faketime)")
    return found[0]


def asan_runtime(binary):
    """The shared ASan runtime the binary loads, if any: it must come first in LD_PRELOAD."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"^\s*libasan\.so\S* => (\S+)", out, re.M)
    return [m.group(1)] if m else []


class FakeClock:
    """Starts mailferryd with libfaketime preloaded (the daemon only, never the servers):
    its wall clock is the real one moved by what `offset_file` says, read at every call,
    and its monotonic clocks are left alone, as a suspend leaves them."""

    def __init__(self, mf_env, offset_file):
        self.mf_env, self.offset_file = mf_env, offset_file
        self.daemon = None

    def set(self, seconds):
        """The daemon's wall clock from now on: the real one moved by `seconds`. The file is
        replaced whole, so the library never reads half a line."""
        tmp = self.offset_file.with_suffix(".tmp")
        tmp.write_text(f"{seconds:+d}\n")
        os.replace(tmp, self.offset_file)

    def start(self, *args):
        self.set(0)
        preload = asan_runtime(self.mf_env.binary("mailferryd")) + [faketime_library()]
        fake = {"LD_PRELOAD": ":".join(preload),
                "FAKETIME_TIMESTAMP_FILE": str(self.offset_file),
                "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        saved = dict(self.mf_env.env)
        self.mf_env.env.update(fake)
        try:
            self.daemon = self.mf_env.daemon(*args)
        finally:
            self.mf_env.env.clear()
            self.mf_env.env.update(saved)
        return self.daemon

    def close(self):
        """Stops the daemon; removes the semaphore and shared memory libfaketime names after
        the process (/dev/shm), which only a clean exit removes itself."""
        if self.daemon is None:
            return
        self.daemon.stop(timeout=10)
        for name in (f"faketime_shm_{self.daemon.pid}", f"sem.faketime_sem_{self.daemon.pid}"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join("/dev/shm", name))


@pytest.fixture
def fake_clock(mf_env, tmp_path):
    clock = FakeClock(mf_env, tmp_path / "faketime")
    yield clock
    clock.close()


def clock_jumps(daemon):
    return [int(s) for s in JUMP.findall(daemon.stderr())]


def arrived(folder, raw):
    """The files holding raw (POP3 writes its line ends as LF, docs/POP3.md)."""
    return [p for p in files(folder).values() if crlf(p.read_bytes()) == raw]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("jump", [JUMP_S, -JUMP_S], ids=["forward", "backward"])
def test_a_clock_jump_syncs_what_push_missed(mf_env, mailserver, fake_clock, jump):
    mailserver.deliver("alice", message(0, "before"))
    on_server = len(mailserver.messages("alice", body=False))
    mf_env.write_config(accounts=[mf_env.account(
        imap={"poll_interval": POLL, "timeout": IMAP_TIMEOUT})])
    d = fake_clock.start("-v")
    inbox = mf_env.maildir()
    wait_for("the first sync", lambda: len(files(inbox)) == on_server)
    wait_for("push by NOTIFY, nothing to do",
             lambda: push_and_state(mf_env) == ("NOTIFY", "idle"))

    # The suspend: every connection the daemon holds goes silent.
    frozen = wait_for("a quiet moment to freeze the daemon's IMAP sessions",
                      lambda: freeze_quiet(mailserver, "alice"))
    try:
        assert "IDLE" in frozen.values(), f"no push connection among {frozen}"
        assert push_and_state(mf_env) == ("NOTIFY", "idle")
        asleep = message(1, "while asleep")
        mailserver.deliver("alice", asleep)
        assert not arrived(inbox, asleep)

        # The resume: the wall clock has moved, the loop's clock has not.
        fake_clock.set(jump)
        wait_for("the jump seen", lambda: clock_jumps(d), timeout=CLOCK_CHECK_S + 10)
        wait_for("the message in the Maildir, byte for byte, on fresh connections",
                 lambda: arrived(inbox, asleep), timeout=IMAP_TIMEOUT - 2)
    finally:
        thaw(frozen)

    # Push is back: with nothing left to do, news arrives again with no poll and no jump.
    wait_for("push by NOTIFY again, nothing to do",
             lambda: push_and_state(mf_env) == ("NOTIFY", "idle"), timeout=2 * IMAP_TIMEOUT)
    awake = message(2, "after waking")
    mailserver.deliver("alice", awake)
    wait_for("the next message, by push", lambda: arrived(inbox, awake))

    assert d.stop() == 0, d.stderr()
    log = d.stderr()
    seen = clock_jumps(d)
    assert len(seen) == 1 and abs(seen[0] - jump) <= 5, f"clock jumps logged: {seen}\n{log}"
    # Both came after the jump was seen; before it, only what was there at the start.
    before, after = log.split("event=clock-jump", 1)
    assert sum(map(int, INBOX_DOWN.findall(before))) == on_server, log
    assert sum(map(int, INBOX_DOWN.findall(after))) == 2, log


@pytest.mark.timeout(120)
def test_a_clock_jump_fetches_pop3(mf_env, mailserver, fake_clock):
    mailserver.deliver("alice", message(0, "before"))
    on_server = len(mailserver.messages("alice", body=False))
    mf_env.write_config(accounts=[mf_env.account(protocol="pop3",
                                                 pop3={"poll_interval": POLL})])
    d = fake_clock.start("-v")
    inbox = mf_env.maildir()
    wait_for("the first fetch", lambda: len(files(inbox)) == on_server)
    wait_for("nothing to do", lambda: push_and_state(mf_env) == ("none", "idle"))
    asleep = message(1, "while asleep")
    mailserver.deliver("alice", asleep)
    fake_clock.set(JUMP_S)
    wait_for("the jump seen", lambda: clock_jumps(d), timeout=CLOCK_CHECK_S + 10)
    wait_for("the message in the Maildir, byte for byte", lambda: arrived(inbox, asleep))
    assert d.stop() == 0, d.stderr()
    assert len(clock_jumps(d)) == 1, d.stderr()
