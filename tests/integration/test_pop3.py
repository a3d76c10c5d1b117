"""POP3 accounts (docs/POP3.md): mailferryd against the harness's Dovecot POP3, over
implicit TLS (pop3s) and STLS, and against the scripted fake POP3 server of
tests/fake/pop3d.py for what Dovecot will not do (drop mid-RETR, never end an answer, lack
UIDL, send garbage).

Every test checks what the user gets: the messages in the account's INBOX Maildir, byte for
byte as the server holds them with LF line ends; what is left on the server; the summary
line or the error on stderr (naming the account); and that nothing is fetched twice. The
crash test kills mailferryd with SIGKILL at random moments of fetches with keep = false and
checks exactly-once by Message-ID and bytes: MF_POP3_SEED=N replays its random choices,
MF_POP3_KILLS sets how many kills (default 24).

Run as root (the mail server harness needs it). MF_BUILD_DIR chooses the build (ctest sets
it); under an ASan+UBSan build any sanitizer report fails the test too.
"""

import base64
import json
import os
import pathlib
import random
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

TESTS_DIR = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS_DIR / "fake"))
sys.path.insert(0, str(TESTS_DIR))

import pop3d  # noqa: E402
import sync_helpers  # noqa: E402
from sync_helpers import SANITIZER_MARKS, message_id, run_mailferryd, sanitized  # noqa: E402
from waiting import wait_for  # noqa: E402

USERS = {f"p{i:02d}": f"pw{i:02d}-{secrets.token_urlsafe(9)}" for i in range(40)}
pytestmark = pytest.mark.mailserver(users=USERS, compress=False, reuse_processes=True)

ACCOUNT = "mail"
SUMMARY = re.compile(r"^mail: pop3, (?P<fetched>\d+) fetched, (?P<deleted>\d+) deleted from "
                     r"the server, (?P<left>\d+) left there, [\d.]+ s$", re.M)
TLS_MODES = ["implicit", "starttls"]
_free_users = list(USERS)


def message(tag, body=None, size=0):
    """A message with CRLF line ends whose Subject and Message-ID carry tag; a line that
    starts with a dot (stuffed on the wire) and 8-bit text; about `size` more bytes."""
    lines = ["From: Bob <bob@example.test>", "To: someone@example.test", f"Subject: {tag}",
             "Date: Mon, 01 Jan 2024 10:00:00 +0000",
             f"Message-ID: <{tag}.{secrets.token_hex(6)}@pop3.example.test>",
             "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", ""]
    lines += (body or f"Body of {tag}.\n.a line with a leading dot\n..two dots\n.\n"
              "Grüße — ✓\nlast line").split("\n")
    if size:
        lines += base64.encodebytes(random.randbytes(size * 3 // 4)).decode().splitlines()
    return ("\r\n".join(lines) + "\r\n").encode()


def lf(raw):
    """What a Maildir file holds for a message the server sends with CRLF line ends."""
    return raw.replace(b"\r\n", b"\n")


class Run(sync_helpers.Run):
    """One run of mailferryd (sync_helpers.Run) with a POP3 account's summary line."""

    def summary(self):
        """The POP3 summary line's counters (not the IMAP sync's of Run.summary)."""
        m = SUMMARY.search(self.out + self.err)
        assert m, f"no summary line:\n{self}"
        return {k: int(v) for k, v in m.groupdict().items()}

    def failed(self, *words):
        """Exit 1, and a stderr line naming the account and saying all words."""
        assert self.rc == 1, f"expected exit 1:\n{self}"
        lines = [ln for ln in self.err.splitlines() if ACCOUNT in ln]
        good = [ln for ln in lines if all(w.lower() in ln.lower() for w in words)]
        assert good, f"no stderr line names {ACCOUNT!r} and says {words}:\n{self}"
        return self


class Pop3Account:
    """One test's POP3 account: its own mail user, config, Maildir and state."""

    def __init__(self, env, user, server=None):
        self.env = env
        self.user = user
        self.server = server or env.server
        self.block = {}
        self.account = {}

    def configure(self, tls=None, port=None, password_command=False, **pop3):
        """Writes the config: pop3 keys over the defaults (for the fake server: host,
        port, tls none, user and password of the scenario)."""
        if port is None:
            acct = self.env.account(ACCOUNT, user=self.user, protocol="pop3",
                                    tls=tls or "implicit",
                                    password_command=password_command, pop3=pop3,
                                    **self.account)
        else:
            block = {"host": "127.0.0.1", "port": port, "tls": tls or "none", "user": "u",
                     "password": "p", "timeout": 5}
            block.update(pop3)
            acct = {"name": ACCOUNT, "maildir": str(self.env.maildir_root / ACCOUNT),
                    "pop3": block, **self.account}
        self.env.write_config([acct])

    def run(self, *args, timeout=120, check=True):
        """mailferryd ARGS to its end: exit 0 or 1 and no sanitizer report, unless check is
        false (a run killed on purpose)."""
        return run_mailferryd(self.env, *args, timeout=timeout, rcs=(0, 1) if check else None,
                              run_class=Run)

    def once(self, *args, rc=0, **kw):
        run = self.run("--once", *args, **kw)
        if rc is not None:
            assert run.rc == rc, f"expected exit {rc}:\n{run}"
        return run

    # ---- the Maildir ----
    def inbox(self):
        layout = self.account.get("layout", "verbatim")
        root = self.env.maildir_root / ACCOUNT
        return root if layout == "maildir++" else root / "INBOX"

    def files(self, sub=("new", "cur")):
        out = []
        for s in sub:
            d = self.inbox() / s
            if d.is_dir():
                out += [(p, p.read_bytes()) for p in sorted(d.iterdir())]
        return out

    def assert_exactly(self, raws):
        """The INBOX holds exactly these messages, once each, byte for byte (LF)."""
        have = sorted(data for _, data in self.files())
        want = sorted(lf(r) for r in raws)
        ids = [message_id(d) for d in have]
        dups = {i for i in ids if ids.count(i) > 1}
        assert not dups, f"fetched twice: {sorted(dups)[:5]}"
        missing = {message_id(r) for r in raws} - set(ids)
        assert not missing, f"lost: {sorted(missing)[:5]}"
        assert have == want, "the Maildir's bytes differ from the server's messages"
        assert not self.files(sub=("tmp",)), "files left in tmp/"

    # ---- the state ----
    def db(self):
        return self.env.state_home / "mailferry" / f"{ACCOUNT}.db"

    def rows(self):
        with sqlite3.connect(self.db()) as db:
            return db.execute("SELECT uidl, base, size, fetched, state FROM pop3").fetchall()

    def sql(self, statement, *params):
        db = sqlite3.connect(self.db())
        try:
            db.execute(statement, params)
            db.commit()
        finally:
            db.close()

    # ---- the server ----
    def server_raws(self):
        return [m.raw for m in self.server.messages(self.user)]

    def deliver(self, *raws):
        self.server.seed(self.user, "INBOX", list(raws))
        return list(raws)


@pytest.fixture
def acct(mf_env):
    """A POP3 account for a mail user no other test of the module uses."""
    assert _free_users, "USERS has too few users for the tests of this module"
    return Pop3Account(mf_env, _free_users.pop(0))


@pytest.fixture
def fake():
    started = []

    def make(scenario):
        srv = pop3d.FakePOP3Server(scenario).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
        assert not srv.errors, f"the fake server itself failed: {srv.errors}"


# ----- fetching from Dovecot -------------------------------------------------------------

@pytest.mark.parametrize("tls", TLS_MODES)
def test_first_fetch_then_nothing_twice(acct, tls):
    """Rules 1-3: new mail lands in INBOX/new once, byte for byte with LF line ends; a
    second fetch fetches nothing; keep = true (the default) leaves it on the server."""
    raws = acct.deliver(*(message(f"first-{tls}-{i}") for i in range(5)))
    acct.configure(tls)
    first = acct.once()
    assert first.summary() == {"fetched": 5, "deleted": 0, "left": 5}, str(first)
    acct.assert_exactly(raws)
    assert all(p.parent.name == "new" and ":2," not in p.name for p, _ in acct.files())
    assert acct.once().summary() == {"fetched": 0, "deleted": 0, "left": 5}
    acct.assert_exactly(raws)
    raws += acct.deliver(message(f"later-{tls}-1"), message(f"later-{tls}-2"))
    assert acct.once().summary() == {"fetched": 2, "deleted": 0, "left": 7}
    acct.assert_exactly(raws)
    assert len(acct.server_raws()) == 7
    assert {r[4] for r in acct.rows()} == {0} and len(acct.rows()) == 7


@pytest.mark.parametrize("tls", TLS_MODES)
def test_keep_false_deletes_after_fetch(acct, tls):
    """Rule 4: keep = false deletes each message from the server once it is in the
    Maildir; the rows of deleted messages are forgotten."""
    raws = acct.deliver(*(message(f"gone-{tls}-{i}") for i in range(4)))
    acct.configure(tls, keep=False)
    assert acct.once().summary() == {"fetched": 4, "deleted": 4, "left": 0}
    acct.assert_exactly(raws)
    assert acct.server_raws() == []
    assert acct.rows() == []
    raws += acct.deliver(message(f"gone-{tls}-late"))
    assert acct.once().summary() == {"fetched": 1, "deleted": 1, "left": 0}
    acct.assert_exactly(raws)


def test_delete_after_days(acct):
    """Rule 5: with delete_after_days = N a message is deleted N days after it was fetched
    (the clock is the fetch time stored in the state, moved back by the test)."""
    raws = acct.deliver(*(message(f"aged-{i}") for i in range(4)))
    acct.configure(keep=True, delete_after_days=3)
    assert acct.once().summary() == {"fetched": 4, "deleted": 0, "left": 4}
    assert acct.once().summary() == {"fetched": 0, "deleted": 0, "left": 4}
    rows = sorted(acct.rows())
    assert len(rows) == 4
    now = int(time.time())
    old, young = rows[:2], rows[2:3]
    for uidl, *_ in old:
        acct.sql("UPDATE pop3 SET fetched = ? WHERE uidl = ?", now - 3 * 86400 - 60, uidl)
    for uidl, *_ in young:  # a day short of the limit by an hour: stays
        acct.sql("UPDATE pop3 SET fetched = ? WHERE uidl = ?", now - 3 * 86400 + 3600, uidl)
    assert acct.once().summary() == {"fetched": 0, "deleted": 2, "left": 2}
    left = acct.server_raws()
    assert len(left) == 2
    assert {r[0] for r in acct.rows()} == {r[0] for r in rows[2:]}
    acct.assert_exactly(raws)  # deleting on the server never touches the Maildir
    assert acct.once().summary() == {"fetched": 0, "deleted": 0, "left": 2}


def test_large_message_streams(acct, mf_env):
    """Rule 7: a 40 MB message is fetched byte for byte and never held in memory whole."""
    big = message("large", size=40 * 1024 * 1024)
    raws = acct.deliver(big, message("small-after-large"))
    acct.configure()
    run = acct.once()
    assert run.summary()["fetched"] == 2
    acct.assert_exactly(raws)
    limit = 150 if sanitized(mf_env) else 40
    assert run.peak_rss_mb < limit, \
        f"peak RSS {run.peak_rss_mb:.0f} MB for a 40 MB message:\n{run}"


@pytest.mark.parametrize("tls", TLS_MODES)
def test_wrong_password(acct, tls):
    """Rule 8: refused credentials fail the account clearly (exit 1, the server's words),
    fetch nothing, and the password never reaches the output."""
    acct.deliver(message(f"locked-out-{tls}"))
    acct.configure(tls, password="not-the-password-" + secrets.token_hex(4))
    run = acct.once("-vv", rc=1)
    run.failed("authentication failed", "-ERR")
    assert "not-the-password" not in run.out + run.err
    assert acct.files() == []
    check = acct.run("--check")
    assert check.rc == 1 and "authentication failed" in check.err, str(check)


@pytest.mark.parametrize("tls", TLS_MODES)
def test_check_logs_in(acct, tls):
    """--check logs in to the POP3 server and says how, fetching nothing."""
    acct.deliver(message(f"check-{tls}"))
    acct.configure(tls)
    run = acct.run("--check")
    assert run.rc == 0, str(run)
    port = acct.server.pop3s_port if tls == "implicit" else acct.server.pop3_port
    want = (rf"^mail: pop3 127\.0\.0\.1:{port} ok: TLSv1\.[23] \S+, user {acct.user}, "
            rf"login AUTH PLAIN, 1 messages \(\d+ bytes\), capabilities: .*PIPELINING")
    assert re.search(want, run.out, re.M), str(run)
    assert acct.files() == []


def test_maildirpp_layout(acct):
    """A POP3 account delivers into its INBOX, which maildir++ puts at the root."""
    raws = acct.deliver(message("plusplus"))
    acct.account = {"layout": "maildir++"}
    acct.configure()
    assert acct.once().summary()["fetched"] == 1
    assert (acct.env.maildir_root / ACCOUNT / "new").is_dir()
    acct.assert_exactly(raws)


def test_trace_hides_secrets_and_pipelines(acct):
    """-vv traces the dialogue without the password (nor the AUTH PLAIN payload), and with
    PIPELINING the RETR commands go out together, not one round trip each."""
    raws = acct.deliver(*(message(f"traced-{i}") for i in range(6)))
    acct.configure(password_command=True)
    run = acct.once("-vv")
    acct.assert_exactly(raws)
    secret = acct.server.users[acct.user]
    payload = base64.b64encode(f"\0{acct.user}\0{secret}".encode()).decode()
    text = run.out + run.err
    assert secret not in text and payload not in text
    assert "C: AUTH PLAIN <redacted>" in text, str(run)
    lines = [ln.split(" C: ", 1)[1] if " C: " in ln else "S" for ln in text.splitlines()
             if " C: " in ln or " S: " in ln]
    first = lines.index("RETR 1")
    assert lines[first:first + 6] == [f"RETR {i}" for i in range(1, 7)], lines


# ----- crash safety ----------------------------------------------------------------------

def signature(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def kill_after_changes(proc, path, target, extra):
    """Waits until path (a file or a directory) changed target times, or proc ended, then
    a little more."""
    seen, last = 0, signature(path)
    while seen < target and proc.poll() is None:
        sig = signature(path)
        if sig != last:
            seen, last = seen + 1, sig
        time.sleep(0.0005)
    time.sleep(extra)


def kill_during_runs(acct, rng, kills, work):
    """Runs mailferryd --once again and again and kills it with SIGKILL, aimed in turn:
    after a random delay; right after its k-th commit to the state (a batch of rows just
    recorded as downloading, or settled); right after the k-th change of INBOX/new (files
    just renamed into place, their rows not settled yet): where a wrong order would lose
    or duplicate mail. work(i) adds mail before run i. Returns how each kill was aimed."""
    aims = []
    for i in range(kills):
        work(i)
        proc = subprocess.Popen([str(acct.env.binary("mailferryd")), "--once"],
                                env=acct.env.env, cwd=acct.env.home, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        target, extra = rng.randint(1, 4), rng.uniform(0.0, 0.02)
        if i % 3 == 0:
            # A run of a few hundred messages takes about a second here: the kills land
            # anywhere in it, downloads, batch commits, DELE and QUIT included.
            delay = rng.uniform(0.0, 1.5)
            aims.append(f"{delay:.3f}s")
            time.sleep(delay)
        elif i % 3 == 1:
            aims.append(f"commit{target}+{extra:.3f}s")
            kill_after_changes(proc, str(acct.db()) + "-wal", target, extra)
        else:
            extra /= 10
            aims.append(f"new{target}+{extra:.4f}s")
            kill_after_changes(proc, acct.inbox() / "new", target, extra)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        for mark in SANITIZER_MARKS:
            assert mark not in err.decode(errors="replace"), err.decode(errors="replace")
    return aims


@pytest.mark.timeout(900)
@pytest.mark.parametrize("keep", [False, True])
def test_sigkill_anywhere_loses_nothing_fetches_nothing_twice(acct, keep):
    """Rule 9: kill -9 at any moment of fetches (downloads, batch commits, DELE, QUIT),
    then a restart: every message is in the Maildir exactly once with its bytes, and with
    keep = false the server ends empty."""
    seed = int(os.environ.get("MF_POP3_SEED", random.randrange(1 << 30)))
    kills = int(os.environ.get("MF_POP3_KILLS", "24"))
    rng = random.Random(seed)
    random.seed(seed)
    print(f"MF_POP3_SEED={seed}")
    acct.configure(keep=keep)
    delivered = []

    def work(i):
        count = rng.choice((0, 40, 150, 400))
        msgs = [message(f"k{i}-{n}-{seed}", size=rng.choice((0, 0, 0, 2000, 300_000)))
                for n in range(count)]
        if msgs:
            delivered.extend(acct.deliver(*msgs))

    aims = kill_during_runs(acct, rng, kills, work)
    final = acct.once()
    again = acct.once()
    context = f"MF_POP3_SEED={seed} kills={aims}\n{final}"
    assert again.summary()["fetched"] == 0, context
    acct.assert_exactly(delivered)
    assert not [r for r in acct.rows() if r[4] != 0], "pending rows left"
    if keep:
        assert len(acct.server_raws()) == len(delivered), context
    else:
        assert acct.server_raws() == [], context
        assert acct.rows() == []


# ----- the daemon ------------------------------------------------------------------------

def test_daemon_polls_syncs_and_reports(acct, mf_env):
    """Rule 10: the daemon fetches at start, every poll_interval and on mailferryctl sync;
    status shows the account with protocol pop3 and its INBOX."""
    raws = acct.deliver(message("daemon-start"))
    acct.configure(poll_interval=1)
    daemon = mf_env.daemon("-v")
    wait_for("the first fetch", lambda: len(acct.files()) == 1)
    raws += acct.deliver(message("daemon-polled"))
    wait_for("a polled fetch", lambda: len(acct.files()) == 2)
    raws += acct.deliver(message("daemon-asked"))
    rc, out, err = mf_env.mailferryctl("sync", ACCOUNT, "--wait")
    assert rc == 0, out + err
    assert len(acct.files()) == 3
    rc, out, err = mf_env.mailferryctl("--json", "status")
    assert rc == 0, out + err
    status = json.loads(out)["accounts"][0]
    assert status["protocol"] == "pop3" and status["name"] == ACCOUNT, status
    assert [f["name"] for f in status["folders"]] == ["INBOX"], status
    assert status["folders"][0]["messages"] == 3 and status["last_error"] == "", status
    assert daemon.stop() == 0, daemon.stderr()
    acct.assert_exactly(raws)
    for mark in SANITIZER_MARKS:
        assert mark not in daemon.stderr(), daemon.stderr()


def test_daemon_backs_off_and_recovers(acct, mf_env, fake):
    """Rule 10: a failing server puts the account in backoff (status says why); a
    mailferryctl sync tries again at once and succeeds once the server is well."""
    box = pop3d.Maildrop.sample(2, tag="backoff")
    srv = fake(pop3d.InUse(box))
    acct.configure(port=srv.port, poll_interval=60)
    daemon = mf_env.daemon("-v")

    def status():
        rc, out, _ = mf_env.mailferryctl("--json", "status")
        return json.loads(out)["accounts"][0] if rc == 0 else {}

    wait_for("backoff", lambda: status().get("state") == "backoff")
    assert "IN-USE" in status()["last_error"], status()
    srv.use(pop3d.Scenario(box))
    rc, out, err = mf_env.mailferryctl("sync", ACCOUNT, "--wait")
    assert rc == 0, out + err + daemon.stderr()
    assert len(acct.files()) == 2 and status()["state"] == "idle", status()
    assert daemon.stop() == 0, daemon.stderr()


def test_daemon_stops_mid_fetch(acct, mf_env):
    """Rule 10: SIGTERM while a message is being downloaded ends the daemon at once and
    cleanly; nothing partial is left and the next fetch gets everything exactly once."""
    raws = acct.deliver(message("before-big"), message("big-stop", size=30 * 1024 * 1024))
    acct.configure(keep=False)
    daemon = mf_env.daemon("-v")
    tmp = acct.inbox() / "tmp"
    wait_for("a download in progress",
             lambda: tmp.is_dir() and any(p.stat().st_size > 0 for p in tmp.iterdir()))
    t0 = time.monotonic()
    assert daemon.stop(timeout=10) == 0, daemon.stderr()
    assert time.monotonic() - t0 < 5, "the daemon took long to stop"
    for mark in SANITIZER_MARKS:
        assert mark not in daemon.stderr(), daemon.stderr()
    assert len(acct.server_raws()) == 2, "deleted although the fetch was cut short"
    assert acct.once().summary()["left"] == 0
    acct.assert_exactly(raws)


# ----- hostile and broken servers (tests/fake/pop3d.py) ------------------------------------

HOSTILE = [
    (pop3d.GarbageGreeting, {}, ("not a POP3 status line", "IMAP4rev1"), ()),
    (pop3d.ErrGreeting, {}, ("refused the connection", "SYS/TEMP"), ()),
    (pop3d.BadLineAt, {"verb": "STAT"}, ("not a POP3 status line", "HELLO"), ()),
    (pop3d.BadLineAt, {"verb": "LIST", "line": b"+OK\r\n1 100\r\nnonsense"},
     ("not a LIST line", "nonsense"), ()),
    (pop3d.LongLine, {}, ("line that is too long",), ()),
    (pop3d.EndlessCapa, {}, ("went on past",), ()),
    (pop3d.EndlessRetr, {"message": 2}, ("RETR 2", "went on past"), (0,)),
    (pop3d.DropMidRetr, {"message": 2}, ("closed the connection",), (0,)),
    (pop3d.RetrErr, {"message": 2}, ("RETR 2", "-ERR [SYS/PERM]"), (0, 2)),
    (pop3d.DuplicateUidl, {}, ("same-id", "unique-id"), ()),
    (pop3d.BadUidlLine, {}, ("not a UIDL line",), ()),
    (pop3d.Silent, {}, ("no answer from the server",), ()),
    (pop3d.InUse, {}, ("IN-USE",), ()),
]


@pytest.mark.parametrize("scenario,options,words,kept", HOSTILE,
                         ids=[f"{s.__name__}-{i}" for i, (s, *_rest) in enumerate(HOSTILE)])
def test_hostile_server(acct, fake, scenario, options, words, kept):
    """Rule 11: a server that breaks one step yields a clear error naming the account, exit
    1, no crash, no hang, no partial message; what arrived whole is kept, and a later run
    against a well-behaved server fetches the rest, each message exactly once."""
    box = pop3d.Maildrop.sample(3, tag=scenario.__name__.lower())
    srv = fake(scenario(box, **options))
    acct.configure(port=srv.port, timeout=2)
    run = acct.once(rc=1)
    run.failed(*words)
    raws = [m.raw for m in box.messages]
    acct.assert_exactly([raws[i] for i in kept])
    srv.use(pop3d.Scenario(box))
    after = acct.once()
    assert after.summary()["fetched"] == 3 - len(kept), str(after)
    acct.assert_exactly(raws)


@pytest.mark.parametrize("case", ["not-offered", "injection"])
def test_stls_is_required_and_clean(acct, fake, case):
    """Rule 8: with tls = "starttls" a server without STLS fails the account (no fallback
    to plaintext, the password is never sent), and plaintext the server sends right after
    its +OK to STLS is refused as an injection."""
    box = pop3d.Maildrop.sample(1, tag="stls-" + case)
    scenario = pop3d.Scenario(box) if case == "not-offered" else pop3d.StlsInjection(box)
    srv = fake(scenario)
    acct.configure(port=srv.port, tls="starttls")
    run = acct.once(rc=1)
    if case == "not-offered":
        run.failed("does not offer STLS")
    else:
        run.failed("before the TLS handshake")
    verbs = [c.split(b" ")[0].upper() for c in srv.scenario.commands()]
    assert not {b"USER", b"PASS", b"AUTH", b"APOP"} & set(verbs), verbs
    assert acct.files() == []


def test_no_uidl_keep_true_is_refused(acct, fake):
    """Rule 6: without UIDL, keep = true cannot remember what was fetched: the account
    fails saying so, and nothing is fetched or deleted."""
    box = pop3d.Maildrop.sample(2, tag="nouidl")
    srv = fake(pop3d.NoUidl(box))
    acct.configure(port=srv.port)
    acct.once(rc=1).failed("no UIDL", "keep = false")
    assert acct.files() == [] and len(box.messages) == 2


def test_no_uidl_keep_false_exactly_once(acct, fake):
    """Rule 6: without UIDL and with keep = false, messages are fetched and deleted; when a
    session ends before QUIT took effect, the next one recognises them by content and keeps
    each once."""
    box = pop3d.Maildrop.sample(3, tag="nouidl-quit")
    raws = [m.raw for m in box.messages]
    srv = fake(pop3d.NoUidlNoQuit(box))
    acct.configure(port=srv.port, keep=False)
    acct.once(rc=1)
    acct.assert_exactly(raws)
    assert len(box.messages) == 3, "the server deleted without QUIT"
    srv.use(pop3d.NoUidl(box))
    run = acct.once()
    assert run.summary() == {"fetched": 0, "deleted": 3, "left": 0}, str(run)
    acct.assert_exactly(raws)
    assert box.messages == [] and acct.rows() == []
    box.add(pop3d.make_message(9, tag="nouidl-new"), "unused")
    assert acct.once().summary() == {"fetched": 1, "deleted": 1, "left": 0}
    acct.assert_exactly(raws + [pop3d.make_message(9, tag="nouidl-new")])


def test_reused_unique_id_is_fetched(acct, fake):
    """Rule 2: a row is forgotten once the server no longer lists its message, so a new
    message that gets a unique-id used before (RFC 1939 allows the reuse) is fetched."""
    box = pop3d.Maildrop.sample(2, tag="reuse")
    raws = [m.raw for m in box.messages]
    srv = fake(pop3d.Scenario(box))
    acct.configure(port=srv.port)
    assert acct.once().summary()["fetched"] == 2
    reused = box.messages[0].uid
    box.messages = box.messages[1:]          # another client deleted it
    assert acct.once().summary() == {"fetched": 0, "deleted": 0, "left": 1}
    assert reused not in {r[0] for r in acct.rows()}
    fresh = pop3d.make_message(7, tag="reuse-new")
    box.add(fresh, reused)
    assert acct.once().summary() == {"fetched": 1, "deleted": 0, "left": 2}
    acct.assert_exactly(raws + [fresh])


@pytest.mark.parametrize("how", ["apop", "user-pass-no-capa", "auth-plain-no-pipelining"])
def test_login_methods(acct, fake, how):
    """APOP where the greeting offers it over plaintext, USER/PASS on a server without CAPA,
    AUTH PLAIN without PIPELINING (one command at a time); no secret in the trace."""
    box = pop3d.Maildrop.sample(3, tag=how)
    options = {"apop": {"apop": True},
               "user-pass-no-capa": {"capa": False},
               "auth-plain-no-pipelining": {"capabilities": ("UIDL", "SASL PLAIN")}}[how]
    srv = fake(pop3d.Scenario(box, password="s3cr3t-" + how, **options))
    acct.configure(port=srv.port, password="s3cr3t-" + how)
    run = acct.once("-vv")
    acct.assert_exactly([m.raw for m in box.messages])
    assert "s3cr3t" not in run.out + run.err
    verbs = [c.split(b" ")[0] for c in srv.scenario.commands()]
    want = {"apop": b"APOP", "user-pass-no-capa": b"PASS", "auth-plain-no-pipelining": b"AUTH"}
    assert want[how] in verbs, verbs
    if how == "auth-plain-no-pipelining":
        trace = [ln for ln in run.err.splitlines() if " C: RETR" in ln or " S: +OK" in ln]
        retrs = [i for i, ln in enumerate(trace) if " C: RETR" in ln]
        assert all(b - a > 1 for a, b in zip(retrs, retrs[1:])), trace
