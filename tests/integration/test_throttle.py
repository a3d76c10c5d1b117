"""The daemon honours servers that limit an account (issue 5, point 4), against the scripted
fake of tests/fake/ speaking the words real providers use:

- Office 365's "Request is throttled. Suggested Backoff Time: N milliseconds", at login and
  mid-session (as BAD, followed by BYE): the daemon waits N ms, says so, and syncs after;
- Gmail's "Account exceeded command or bandwidth limits" (NO [ALERT] at login, or BYE
  [OVERQUOTA] in the middle of a fetch): a long wait, no loop;
- Gmail's "Too many simultaneous connections": a wait, then a sync; and when the server
  takes fewer connections than max_connections, a sync over the ones it has;
- max_connections holds in total, push included, also while the account reconnects after
  the server dropped every connection (the fake counts the client's open connections).

Waits have deadlines; the only fixed sleeps measure that nothing happens during a window.
The binaries are $MF_BUILD_DIR/daemon/mailferryd and ctl/mailferryctl (ctest sets it).
"""

import collections
import json
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

TESTS_DIR = pathlib.Path(__file__).resolve().parent.parent
REPO_DIR = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR / "fake"))

import scenarios  # noqa: E402
from imapd import FakeIMAPServer, Mailbox, Scenario, make_message  # noqa: E402
from sync_helpers import SANITIZER_MARKS, build_dir, sandbox_env, write_fake_config  # noqa: E402
from waiting import wait_for  # noqa: E402

ACCOUNT = "limited"
BACKOFF = re.compile(rf"account={ACCOUNT} event=backoff seconds=([0-9.]+) reason=(\w+): (.*)")
# libuv counts a timer from the loop's cached clock, which may lag the real one by the
# time the current loop turn took: a wait can end a few milliseconds early.
TIMER_SLACK = 0.05
# How long "nothing happens" is watched.
QUIET_WINDOW = 5.0

O365 = "Request is throttled. Suggested Backoff Time: {} milliseconds"
GMAIL_BANDWIDTH = "Account exceeded command or bandwidth limits."
GMAIL_CONNECTIONS = "NO [ALERT] Too many simultaneous connections. (Failure)"

Backoff = collections.namedtuple("Backoff", "seconds reason text")


class Daemon:
    """mailferryd in the background for one account on the fake, in its own HOME."""

    def __init__(self, tmp_path, port, **imap):
        self.home = tmp_path / "home"
        self.maildir = tmp_path / "mail"
        self.config = tmp_path / "config"
        self.stderr_path = tmp_path / "mailferryd.err"
        (self.home / "run").mkdir(parents=True)
        (self.home / "run").chmod(0o700)
        write_fake_config(self.config, ACCOUNT, self.maildir, tmp_path / "state", port,
                          {"timeout": 10, "poll_interval": 3600, **imap})
        self.env = sandbox_env(self.home)
        self.build = build_dir()
        self.proc = None

    def start(self):
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(self.build / "daemon" / "mailferryd"), "-c", str(self.config), "-v"],
                env=self.env, cwd=self.home, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err)
        return self

    def log(self):
        return self.stderr_path.read_text(errors="replace")

    def backoffs(self):
        return [Backoff(float(m.group(1)), m.group(2), m.group(3))
                for m in BACKOFF.finditer(self.log())]

    def wait_backoff(self, reason, timeout=30.0):
        def found():
            assert self.proc.poll() is None, f"mailferryd exited:\n{self.log()[-4000:]}"
            return next((b for b in self.backoffs() if b.reason == reason), None)
        return wait_for(f"event=backoff reason={reason}; log:\n{self.log()[-3000:]}", found,
                        timeout)

    def pushing(self):
        """How many push connections have started (IDLE on a folder) so far."""
        return self.log().count(f"account={ACCOUNT} event=push ")

    def ctl(self, *args):
        res = subprocess.run([str(self.build / "ctl" / "mailferryctl"), "-c", str(self.config),
                              *args], env=self.env, capture_output=True, text=True, timeout=30)
        return res.returncode, res.stdout, res.stderr

    def status(self):
        rc, out, err = self.ctl("--json", "status")
        assert rc == 0, err
        return json.loads(out)["accounts"][0]

    def folder(self, name):
        return self.maildir / name

    def local(self, name):
        """{path: bytes} of the messages of one folder's Maildir."""
        out = {}
        for sub in ("new", "cur"):
            d = self.folder(name) / sub
            if d.is_dir():
                for p in d.iterdir():
                    out[p] = p.read_bytes()
        return out

    def mirrors(self, mailbox):
        """Every server folder's messages are in its Maildir, once each."""
        with mailbox.lock:
            remote = {f.name: sorted(m.raw for m in f.messages) for f in mailbox.folders}
        return all(sorted(self.local(name).values()) == raws for name, raws in remote.items())

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"mailferryd ignored SIGTERM:\n{self.log()[-4000:]}")
        log = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in log, f"{mark!r} in the log:\n{log[-6000:]}"
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}:\n{log[-4000:]}"


@pytest.fixture
def server():
    srv = FakeIMAPServer(Scenario(Mailbox.sample())).start()
    yield srv
    srv.stop()
    assert not srv.errors, f"the fake server itself failed: {srv.errors}"


@pytest.fixture
def daemon(tmp_path, server):
    started = []

    def start(scenario, **imap):
        server.use(scenario)
        d = Daemon(tmp_path, server.port, **imap).start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def connections_between(server, start, end):
    return [t for t in server.accepted if start < t < end]


def add_mail(mailbox, folder, tag):
    with mailbox.lock:
        f = mailbox.find(folder)
        return f.add(make_message(folder, 1000 + f.uidnext, body_lines=1)
                     .replace(b"Subject: ", f"Subject: {tag} ".encode(), 1))


def flag_locally(d, folder, letter="F"):
    """A reader flags one message: its file gets the flag letter (into cur/)."""
    for path in sorted(d.local(folder)):
        base, _, flags = path.name.partition(":2,")
        if letter not in flags:
            new = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags + letter))}"
            path.rename(new)
            return base
    pytest.fail(f"no message in {folder} without {letter}")


def server_flagged(mailbox, folder, count):
    with mailbox.lock:
        return sum("\\Flagged" in m.flags for m in mailbox.find(folder).messages) >= count


# ---- Office 365 ----

def test_office365_throttle_at_login(server, daemon):
    """The suggested wait is logged and kept to: no connection before it ends; then the
    account syncs."""
    box = Mailbox.sample()
    sc = scenarios.Refusing(box, verb="LOGIN", reply="NO " + O365.format(3000), times=1)
    d = daemon(sc)
    b = d.wait_backoff("throttled")
    assert 3.0 <= b.seconds <= 3.3, b
    assert "Suggested Backoff Time: 3000 milliseconds" in b.text and "throttles" in b.text
    wait_for("the sync after the wait", lambda: d.mirrors(box), timeout=30)
    assert len(sc.refused) == 1
    refused = sc.refused[0]
    early = connections_between(server, refused, refused + 3.0 - TIMER_SLACK)
    assert not early, f"reconnected {[round(t - refused, 3) for t in early]} s after the " \
                      "throttle, before the suggested 3 s"
    assert len(d.backoffs()) == 1


def test_office365_throttle_mid_session(server, daemon):
    """Office 365 throttles a running session with BAD and drops it: the daemon, with push
    running, waits the suggested time before it connects again, then pushes the reader's
    change it was carrying."""
    box = Mailbox.sample({"INBOX": 2})
    sc = scenarios.Refusing(box, verb="SELECT", reply="BAD " + O365.format(3000),
                            bye="Connection closed. 14", times=1, armed=False,
                            capabilities="IMAP4rev1 IDLE")
    d = daemon(sc, max_connections=2)
    wait_for("the first sync", lambda: d.mirrors(box))
    wait_for("push", d.pushing)
    sc.armed = True
    flag_locally(d, "INBOX")
    b = d.wait_backoff("throttled")
    assert 3.0 <= b.seconds <= 3.3, b
    assert "SELECT: BAD Request is throttled" in b.text
    wait_for("the flag to reach the server", lambda: server_flagged(box, "INBOX", 1),
             timeout=30)
    assert len(sc.refused) == 1
    refused = sc.refused[0]
    early = connections_between(server, refused, refused + 3.0 - TIMER_SLACK)
    assert not early, f"reconnected {[round(t - refused, 3) for t in early]} s after the " \
                      "throttle, before the suggested 3 s"


# ---- Gmail ----

@pytest.mark.parametrize("where", ["login", "bye-mid-fetch"])
def test_gmail_bandwidth_limit(server, daemon, where):
    """Gmail's daily quota: a wait of at least half an hour, said so in the log and in
    mailferryctl status, and not one connection more meanwhile."""
    box = Mailbox.sample()
    if where == "login":
        sc = scenarios.Refusing(box, verb="LOGIN", reply="NO [ALERT] " + GMAIL_BANDWIDTH,
                                times=None)
    else:
        sc = scenarios.Refusing(box, verb="UID FETCH", reply=None,
                                bye="[OVERQUOTA] " + GMAIL_BANDWIDTH, times=None)
    d = daemon(sc)
    b = d.wait_backoff("bandwidth")
    assert 30 * 60 <= b.seconds <= 30 * 60 * 1.25, b
    assert "bandwidth or command limit" in b.text and GMAIL_BANDWIDTH in b.text
    st = wait_for("status to say backoff", lambda: (s := d.status())["state"] == "backoff"
                  and s)
    assert st["backoff_ms"] > 29 * 60 * 1000, st
    assert GMAIL_BANDWIDTH in st["last_error"], st
    connections, refusals = server.connections, len(sc.refused)
    time.sleep(QUIET_WINDOW)  # measuring: nothing may happen in this window
    assert (server.connections, len(sc.refused)) == (connections, refusals), \
        f"connections went on during the wait:\n{d.log()[-3000:]}"
    assert len(d.backoffs()) == 1
    # the pass that met the limit may have tried each folder, but no more
    assert server.connections <= 1 + len(box.folders), server.connections


def test_gmail_too_many_connections_at_login(server, daemon):
    """Every connection the server allows is held by other clients: a wait (not the 15
    minutes of refused credentials), then the sync."""
    box = Mailbox.sample()
    sc = scenarios.Refusing(box, verb="LOGIN", reply=GMAIL_CONNECTIONS, times=1)
    d = daemon(sc)
    b = d.wait_backoff("connections")
    assert 10.0 <= b.seconds <= 12.5, b
    assert "other mail clients hold them" in b.text
    assert "refused the credentials" not in d.log()
    wait_for("the sync after the wait", lambda: d.mirrors(box), timeout=40)
    refused = sc.refused[0]
    early = connections_between(server, refused, refused + 10.0 - TIMER_SLACK)
    assert not early, f"reconnected {[round(t - refused, 3) for t in early]} s after the " \
                      "refusal"
    assert len(sc.refused) == 1


def test_gmail_connection_limit_below_max_connections(server, daemon):
    """The server takes 2 connections of the 4 the account may open: the account syncs and
    pushes over those, does not back off, and does not keep knocking."""
    box = Mailbox.sample({name: 3 for name in ("INBOX", "A", "B", "C", "D", "E")})
    sc = scenarios.ConnectionLimit(box, limit=2, text=GMAIL_CONNECTIONS,
                                   capabilities="IMAP4rev1 IDLE")
    d = daemon(sc, max_connections=4)
    wait_for("the first sync", lambda: d.mirrors(box))
    wait_for("push", d.pushing)
    assert sc.refused, "the daemon never met the server's limit: the test proves nothing"
    refusals = len(sc.refused)
    for name in ("A", "C", "E"):
        add_mail(box, name, "later")
    rc, out, err = d.ctl("sync", ACCOUNT, "--wait")
    assert rc == 0, err
    assert d.mirrors(box)
    assert not d.backoffs(), d.log()[-3000:]
    assert "refused the credentials" not in d.log()
    assert len(sc.refused) <= refusals + 2, f"{len(sc.refused)} refused logins"
    assert server.peak <= 4


# ---- max_connections in total ----

@pytest.mark.parametrize("max_connections", [2, 3])
def test_connections_never_exceed_max(server, daemon, max_connections):
    """Push (IDLE on as many folders as it may take connections: all but one) and passes
    over eight folders share max_connections; the server then drops everything, twice in a
    row once, and the account reconnects: the fake never sees more than max_connections
    open at once."""
    folders = ["INBOX"] + [f"F{i}" for i in range(1, 8)]
    box = Mailbox.sample({name: 3 for name in folders})
    sc = scenarios.Slow(box, delay=0.02, capabilities="IMAP4rev1 IDLE")
    d = daemon(sc, max_connections=max_connections, idle=folders[:max_connections - 1])
    wait_for("the first sync", lambda: d.mirrors(box), timeout=40)
    wait_for("push", d.pushing)

    # a pass over every folder while push holds its connections
    for name in folders:
        flag_locally(d, name)
        add_mail(box, name, "during push")
    wait_for("the flags to reach the server",
             lambda: all(server_flagged(box, name, 1) for name in folders), timeout=40)
    rc, out, err = d.ctl("sync", ACCOUNT, "--wait")
    assert rc == 0, err
    assert d.mirrors(box)

    for round_ in range(3):
        for name in folders[round_::2]:
            add_mail(box, name, f"round {round_}")
        pushes, seen = d.pushing(), server.connections
        server.drop_all()
        if round_ == 1:  # once more in the middle of the reconnect
            wait_for("a reconnect", lambda: server.connections > seen, timeout=30)
            server.drop_all()
        wait_for(f"round {round_}: the sync after the drop", lambda: d.mirrors(box),
                 timeout=40)
        wait_for(f"round {round_}: push again", lambda: d.pushing() > pushes, timeout=30)

    assert server.peak <= max_connections, \
        f"{server.peak} connections open at once with max_connections = {max_connections}"
    assert server.peak == max_connections, \
        f"the daemon never used all {max_connections} connections: the test proves nothing"
