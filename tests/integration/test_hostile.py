"""mailferryd against hostile and broken IMAP servers (the scripted fake of tests/fake/).

Each test points `mailferryd --check` or `--once` at a server that breaks one step of an
ordinary session and checks what the user sees: the exit code (1, never a signal), a message
on stderr naming the account (and the folder where there is one), nothing written outside
the Maildir root (and the state_dir), no partial message in new/ or cur/, and, where the
scenario allows it, that a later run against a well-behaved server fetches each message
exactly once, byte for byte. Under an ASan+UBSan build (MF_BUILD_DIR) any sanitizer report
fails the test too.

The binary is $MF_BUILD_DIR/daemon/mailferryd (ctest sets MF_BUILD_DIR; by hand it defaults
to build/ in the repository).
"""

import base64
import collections
import hashlib
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

TESTS_DIR = pathlib.Path(__file__).resolve().parent.parent
REPO_DIR = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR / "fake"))

import imapd  # noqa: E402
import scenarios  # noqa: E402
import sync_helpers  # noqa: E402
from imapd import FakeIMAPServer, Mailbox, Scenario  # noqa: E402
from sync_helpers import SANITIZER_MARKS, build_dir, sandbox_env, write_fake_config  # noqa: E402

ACCOUNT = "evil"
PEAK_RSS_LIMIT_MB = 100


def daemon_binary():
    return build_dir() / "daemon" / "mailferryd"


class Run(sync_helpers.Run):
    """One run of mailferryd (sync_helpers.Run) with the checks of a hostile server's."""

    @property
    def output(self):
        return self.out + self.err

    def sane(self, rc=None):
        """Exited on its own (0 or 1, no signal, no hang) with no sanitizer report."""
        assert self.rc in (0, 1), f"mailferryd crashed or misbehaved:\n{self}"
        for mark in SANITIZER_MARKS:
            assert mark not in self.err, f"{mark!r} on stderr:\n{self}"
        if rc is not None:
            assert self.rc == rc, f"expected exit {rc}:\n{self}"
        return self

    def failed(self, *words, folder=None):
        """Exit 1 with a line on stderr naming the account (and folder) and all words."""
        self.sane(1)
        lines = [ln for ln in self.err.splitlines() if ACCOUNT in ln]
        assert lines, f"no stderr line names account {ACCOUNT!r}:\n{self}"
        wanted = list(words) + ([folder] if folder else [])
        good = [ln for ln in lines if all(w.lower() in ln.lower() for w in wanted)]
        assert good, f"no stderr line names {ACCOUNT!r} and says {wanted}:\n{self}"
        return self


class Sandbox:
    """Everything one test's mailferryd may touch, under one directory:

    sandbox/home              HOME, XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_RUNTIME_DIR
    sandbox/etc/config        the config (0600)
    sandbox/state             state_dir
    sandbox/deep/.../mail     the Maildir root, deep enough that "../../x" stays inside
                              sandbox/ (so the walk of sandbox/ sees any escape)
    Output of each run goes to logs/ beside sandbox/, outside the walk.
    """

    def __init__(self, tmp_path):
        self.root = tmp_path / "sandbox"
        self.logs = tmp_path / "logs"
        self.home = self.root / "home"
        self.state = self.root / "state"
        self.maildir = self.root / "deep" / "d1" / "d2" / "d3" / "d4" / "mail"
        self.config = self.root / "etc" / "config"
        for d in (self.home / ".config", self.home / ".local" / "state", self.home / "run",
                  self.maildir.parent, self.config.parent, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        (self.home / "run").chmod(0o700)
        self.runs = 0

    def write_config(self, port, password="p", user="u", timeout=5, **imap):
        write_fake_config(self.config, ACCOUNT, self.maildir, self.state, port,
                          {"user": user, "password": password, "timeout": timeout, **imap})

    def env(self):
        return sandbox_env(self.home)

    def run(self, *args, timeout=60):
        """mailferryd -c CONFIG ARGS, to its end (killed after `timeout` s: a hang fails)."""
        self.runs += 1
        args = ["-c", str(self.config), *map(str, args)]
        out_path = self.logs / f"run{self.runs}.out"
        err_path = self.logs / f"run{self.runs}.err"
        start = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen([str(daemon_binary()), *args], env=self.env(),
                                    cwd=self.home, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err)
        status = usage = None
        while status is None:
            pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, usage = st, ru
            elif time.monotonic() - start > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                pytest.fail(f"mailferryd {' '.join(args)} hung for {timeout} s; stderr:\n"
                            + err_path.read_text(errors="replace")[-6000:])
            else:
                time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return Run(args[2:], proc.returncode, out_path.read_text(errors="replace"),
                   err_path.read_text(errors="replace"), time.monotonic() - start,
                   usage.ru_maxrss / 1024)

    # ---- looking at the disk ----

    def snapshot(self):
        """Every path under sandbox/ except the Maildir root and state_dir, with what it is."""
        seen = {}
        skip = {self.maildir, self.state}
        for dirpath, dirnames, filenames in os.walk(self.root):
            d = pathlib.Path(dirpath)
            dirnames[:] = [n for n in dirnames if d / n not in skip]
            for n in dirnames + filenames:
                p = d / n
                if p in skip:
                    continue
                st = os.lstat(p)
                kind = "dir" if p.is_dir() and not p.is_symlink() else \
                    "link" if p.is_symlink() else "file"
                digest = hashlib.sha256(p.read_bytes()).hexdigest() if kind == "file" else ""
                seen[str(p.relative_to(self.root))] = (kind, st.st_mode, digest)
        return seen

    def maildirs(self):
        """{path relative to the root: Maildir dir} for each dir holding cur/ new/ tmp/."""
        found = {}
        if not self.maildir.exists():
            return found
        for dirpath, dirnames, _ in os.walk(self.maildir):
            if {"cur", "new", "tmp"} <= set(dirnames):
                d = pathlib.Path(dirpath)
                found[str(d.relative_to(self.maildir))] = d
        return found

    def files(self, folder=None, sub=("new", "cur")):
        """[(path, bytes)] of the messages in new/ and cur/ (of one folder, or all)."""
        dirs = self.maildirs()
        if folder is not None:
            dirs = {folder: dirs[folder]} if folder in dirs else {}
        out = []
        for d in dirs.values():
            for s in sub:
                for p in sorted((d / s).iterdir()):
                    out.append((p, p.read_bytes()))
        return out

    def tmp_files(self):
        return [p for p, _ in self.files(sub=("tmp",))]

    def escapes(self):
        """Paths under the Maildir root that are symlinks or resolve outside it."""
        bad = []
        root = os.path.realpath(self.maildir)
        for dirpath, dirnames, filenames in os.walk(self.maildir):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                if os.path.islink(p) or \
                        os.path.commonpath([root, os.path.realpath(p)]) != root:
                    bad.append(p)
        return bad


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(tmp_path)


@pytest.fixture
def server():
    """A well-behaved fake on a free port; tests swap in hostile scenarios with use()."""
    srv = FakeIMAPServer(Scenario(Mailbox.sample())).start()
    yield srv
    srv.stop()
    assert not srv.errors, f"the fake server itself failed: {srv.errors}"


# ---- shared checks ----

def assert_untouched(sandbox, before):
    after = sandbox.snapshot()
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), \
        f"written outside the Maildir root: added {added}, removed {removed}, changed {changed}"
    assert not sandbox.escapes(), f"paths escaping the Maildir root: {sandbox.escapes()}"


def assert_no_partial(sandbox, mailbox):
    """Every file in new/ and cur/ is a whole message of the server, and tmp/ is empty."""
    whole = set(mailbox.all_raw())
    for path, data in sandbox.files():
        assert data in whole, f"{path} is not a whole message of the server " \
                              f"({len(data)} bytes: {data[:80]!r}...)"
    assert not sandbox.tmp_files(), f"left in tmp/: {sandbox.tmp_files()}"


def assert_mirrors(sandbox, mailbox):
    """Each server folder's messages are in its Maildir exactly once, byte for byte."""
    for f in mailbox.folders:
        local = sorted(data for _, data in sandbox.files(f.name))
        remote = sorted(m.raw for m in f.messages)
        assert local == remote, (
            f"folder {f.name}: {len(local)} local files for {len(remote)} server messages; "
            f"local Message-IDs {[imapd.Message(0, d).message_id() for d in local]}")
    assert len(sandbox.files()) == len(mailbox.all_raw())


def snapshot_server(mailbox):
    return {f.name: sorted(m.raw for m in f.messages) for f in mailbox.folders}


def good_run(sandbox, server, mailbox):
    """A well-behaved server: --once succeeds and mirrors the mailbox; a second --once
    changes nothing on either side."""
    server.use(Scenario(mailbox))
    before = snapshot_server(mailbox)
    sandbox.run("--once").sane(0)
    assert snapshot_server(mailbox) == before, "the server's mail changed (an upload?)"
    assert_mirrors(sandbox, mailbox)
    names = sorted(str(p) for p, _ in sandbox.files())
    again = sandbox.run("--once").sane(0)
    assert re.search(r"\b0 down, 0 up\b", again.out), f"second run not idle:\n{again}"
    assert sorted(str(p) for p, _ in sandbox.files()) == names
    assert snapshot_server(mailbox) == before


# ---- the greeting ----

def test_closed_mid_greeting(sandbox, server):
    server.use(scenarios.ClosedMidGreeting())
    sandbox.write_config(server.port)
    before = sandbox.snapshot()
    sandbox.run("--check").failed("closed the connection")
    sandbox.run("--once").failed("closed the connection")
    assert_untouched(sandbox, before)
    assert not sandbox.files()


def test_bye_greeting(sandbox, server):
    server.use(scenarios.ByeGreeting())
    sandbox.write_config(server.port)
    before = sandbox.snapshot()
    sandbox.run("--check").failed("BYE too busy")
    sandbox.run("--once").failed("too busy")
    assert_untouched(sandbox, before)


GREETING = b"* OK fake IMAP server ready\r\n"
MALFORMED = {
    # instead of a greeting
    "http-greeting": scenarios.GarbageGreeting(payload=b"HTTP/1.1 400 Bad Request\r\n"),
    "binary-greeting": scenarios.GarbageGreeting(payload=b"\x00\x16\x03\x01\x02\x00\x01"
                                                         b"\xff\xfc\r\n"),
    "unterminated-code-greeting": scenarios.GarbageGreeting(
        payload=b"* OK [CAPABILITY IMAP4rev1\r\n"),
    # right after a good greeting, before login
    "unbalanced-paren": scenarios.GarbageGreeting(
        payload=GREETING + b"* 1 FETCH (FLAGS (\\Seen)\r\n"),
    "extra-paren": scenarios.GarbageGreeting(
        payload=GREETING + b"* 1 FETCH (FLAGS (\\Seen))))\r\n"),
    "bad-literal-header": scenarios.GarbageGreeting(
        payload=GREETING + b"* 1 FETCH (BODY[] {abc})\r\n"),
    "unterminated-quote": scenarios.GarbageGreeting(
        payload=GREETING + b'* 1 FETCH (BODY[] "unterminated)\r\n'),
    "huge-literal-before-login": scenarios.GarbageGreeting(
        payload=GREETING + b"* 1 FETCH (BODY[] {1000000000000}\r\n" + b"x" * 65536),
    # in the answer to LIST, after login
    "unbalanced-list": scenarios.MalformedList(line=b'* LIST (\\HasNoChildren "/" Work'),
    "extra-paren-list": scenarios.MalformedList(line=b'* LIST (\\HasNoChildren)) "/" Work'),
    "bad-literal-list": scenarios.MalformedList(line=b'* LIST () "/" {abc}'),
    "negative-literal-list": scenarios.MalformedList(line=b'* LIST () "/" {-5}'),
    "huge-literal-list": scenarios.MalformedList(line=b'* LIST () "/" {1000000000000}'),
    "overflow-literal-list": scenarios.MalformedList(
        line=b'* LIST () "/" {99999999999999999999999}'),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_response(sandbox, server, case):
    # The fake says nothing after the bad line and keeps the connection open: the client
    # must notice the malformation itself, long before its 30 s timeout.
    scenario = MALFORMED[case]
    scenario.mailbox = Mailbox.sample()
    server.use(scenario)
    sandbox.write_config(server.port, timeout=30)
    before = sandbox.snapshot()
    for mode in ("--check", "--once"):
        run = sandbox.run(mode).failed("malformed response")
        assert run.seconds < 10, f"took {run.seconds:.1f} s: waited for the timeout?\n{run}"
    assert_untouched(sandbox, before)
    assert not sandbox.files()


# ---- an unsolicited BYE mid-session ----

@pytest.mark.parametrize("verb,folder", [("SELECT", "Work"), ("LIST", None),
                                         ("UID FETCH", "Work")])
def test_bye_mid_session(sandbox, server, verb, folder):
    mailbox = Mailbox.sample()
    server.use(scenarios.ByeAt(mailbox, verb=verb, folder=folder))
    sandbox.write_config(server.port)
    before = sandbox.snapshot()
    run = sandbox.run("--once")
    run.failed(scenarios.ByeAt.text, folder=folder)
    assert_no_partial(sandbox, mailbox)
    assert_untouched(sandbox, before)
    good_run(sandbox, server, mailbox)
    assert_untouched(sandbox, before)


# ---- folder names that try to leave the Maildir root ----

def name_fragment(name):
    """The longest printable run of a folder name: what any log line naming it shows,
    however it writes the control characters."""
    return max(re.split(r"[\x00-\x1f\x7f]", name), key=len)


def sync_hostile_names(sandbox, server):
    """--once against a server listing folders named to escape the Maildir root (one
    message each); checks that nothing landed outside it. Returns (run, mailbox)."""
    outside = sandbox.root / "outside" / "abs"
    mailbox = scenarios.hostile_names_mailbox(extra=[(str(outside), None)])
    server.use(Scenario(mailbox))
    sandbox.write_config(server.port)
    watched = [pathlib.Path("/abs"), pathlib.Path("/tmp/mf-hostile-escape"),
               pathlib.Path("/etc/cur"), pathlib.Path("/etc/new"), pathlib.Path("/etc/tmp")]
    existed = {p: p.exists() for p in watched}
    before = sandbox.snapshot()
    run = sandbox.run("--once").sane()
    assert_untouched(sandbox, before)
    assert {p: p.exists() for p in watched} == existed, "written outside the sandbox"
    assert_no_partial(sandbox, mailbox)
    return run, mailbox


def local_copies(sandbox):
    """{Message-ID: [Maildir of each copy, relative to the root]}."""
    found = collections.defaultdict(list)
    for path, data in sandbox.files():
        found[imapd.Message(0, data).message_id()].append(
            str(path.parent.parent.relative_to(sandbox.maildir)))
    return found


def test_hostile_folder_names_stay_inside(sandbox, server):
    run, mailbox = sync_hostile_names(sandbox, server)
    copies = local_copies(sandbox)
    dirs = set(sandbox.maildirs())
    for f in mailbox.folders:
        where = copies.get(f.messages[0].message_id(), [])
        assert len(where) <= 1, f"{f.name!r} stored {len(where)} times: {where}"
    # No Maildir sits on another's cur/ new/ tmp/, and none is a dot directory.
    for rel in dirs:
        parts = rel.split("/")
        assert not set(parts) & {"cur", "new", "tmp", ".", ".."}, rel
        assert not any(p.startswith(".") for p in parts), rel
    assert re.search(r"\b0 up\b", run.out), f"uploaded something:\n{run}"


def test_hostile_folder_names_logged(sandbox, server):
    # Each folder is either synced into a Maildir inside the root (escaped) or refused;
    # either way a log line names the account and the folder, and the line of an escaped
    # folder says where it is stored (the user looks for "../../etc" under that name).
    run, mailbox = sync_hostile_names(sandbox, server)
    copies = local_copies(sandbox)
    problems = []
    for f in mailbox.folders:
        where = copies.get(f.messages[0].message_id(), [])
        lines = [ln for ln in run.err.splitlines()
                 if ACCOUNT in ln and name_fragment(f.name) in ln]
        if where:
            rel = where[0]
            if f.name not in ("INBOX", "Work") and rel != f.name and \
                    not any(rel in ln for ln in lines):
                problems.append(f"{f.name!r} stored as {rel!r} without a log line saying so")
        elif not any(re.search(r"skip|refus|ignor|invalid", ln, re.I) for ln in lines):
            problems.append(f"{f.name!r} neither synced nor refused with a log line naming "
                            f"account {ACCOUNT!r} and the folder")
    assert not problems, "\n".join(problems) + f"\n{run}"


def test_no_control_characters_in_log(sandbox, server):
    # The log must never carry the server's control characters (terminal escapes, fake
    # lines): only printable text and the newline ending each line, also at -vv.
    for args in ((), ("-vv",)):
        run, _ = sync_hostile_names(sandbox, server) if not args else \
            (sandbox.run("--once", *args).sane(), None)
        raw = (run.out + run.err).encode()
        bad = sorted({chr(b) for b in raw if (b < 0x20 and b != 0x0A) or b == 0x7F})
        assert not bad, f"control characters {bad!r} from folder names reached the " \
                        f"output ({' '.join(args) or 'default level'}):\n{run}"


# ---- message bodies that never end ----

@pytest.mark.parametrize("then", ["close", "silence"])
def test_huge_literal(sandbox, server, then):
    # BODY[] announced as 10^12 bytes; 128 MiB of it arrive, then the server closes (or goes
    # quiet until the 3 s timeout). Streaming keeps the memory small.
    mailbox = Mailbox.sample()
    server.use(scenarios.BodyTrouble(mailbox, uid=2, folder="INBOX", announce=10**12,
                                     send=128 << 20, then=then))
    sandbox.write_config(server.port, timeout=3)
    before = sandbox.snapshot()
    run = sandbox.run("--once", timeout=120)
    words = ["closed the connection"] if then == "close" else []
    run.failed(*words, folder="INBOX")
    if then == "silence":
        assert re.search(r"timed out|timeout|no answer", run.err, re.I), str(run)
    assert run.peak_rss_mb < PEAK_RSS_LIMIT_MB, f"peak RSS {run.peak_rss_mb:.0f} MB\n{run}"
    assert_no_partial(sandbox, mailbox)
    assert_untouched(sandbox, before)
    good_run(sandbox, server, mailbox)


def test_disconnect_mid_literal(sandbox, server):
    mailbox = Mailbox.sample({"INBOX": 4, "Work": 2})
    server.use(scenarios.BodyTrouble(mailbox, uid=2, send=150, then="close"))
    sandbox.write_config(server.port)
    before = sandbox.snapshot()
    run = sandbox.run("--once")
    run.failed("closed the connection", folder="INBOX")
    assert_no_partial(sandbox, mailbox)
    good_run(sandbox, server, mailbox)
    assert_untouched(sandbox, before)


# ---- the server forgets its UIDs ----

def test_uidvalidity_flip(sandbox, server):
    mailbox = Mailbox.sample({"INBOX": 3, "Work": 2})
    server.use(Scenario(mailbox))
    sandbox.write_config(server.port)
    sandbox.run("--once").sane(0)
    assert_mirrors(sandbox, mailbox)
    files = {str(p): d for p, d in sandbox.files()}

    for f in mailbox.folders:
        f.renumber(f.uidvalidity + 777, first_uid=100)
    fresh = mailbox.find("INBOX").add(imapd.make_message("INBOX", 99))
    run = sandbox.run("--once").sane(0)
    assert re.search(r"\b1 down, 0 up\b", run.out), f"expected only the new message:\n{run}"
    for name in ("INBOX", "Work"):
        assert any(ACCOUNT in ln and name in ln and "uidvalidity" in ln.lower()
                   for ln in run.err.splitlines()), f"UIDVALIDITY change of {name} not " \
                                                    f"reported:\n{run}"
    after = {str(p): d for p, d in sandbox.files()}
    gone = set(files) - set(after)
    assert not gone, f"local files removed or renamed after the UIDVALIDITY change: {gone}"
    assert [after[p] for p in set(after) - set(files)] == [fresh.raw]
    assert_mirrors(sandbox, mailbox)
    good_run(sandbox, server, mailbox)


# ---- a server that runs pipelined commands side by side ----

def test_expunge_waits_for_the_deleted_mark(sandbox, server):
    """A local delete expunges on the server once the \\Deleted mark is on, not in the
    same breath: a server that ran the pipelined EXPUNGE first expunged nothing, the
    state row went all the same, and the next sync fetched the message back (the soak
    found it against Dovecot)."""
    mailbox = Mailbox.sample({"INBOX": 3})
    server.use(scenarios.ParallelExpunge(mailbox))
    sandbox.write_config(server.port)
    sandbox.run("--once").sane(0)
    path, data = sandbox.files("INBOX")[0]
    path.unlink()
    sandbox.run("--once").sane(0)
    assert data not in [m.raw for m in mailbox.find("INBOX").messages], \
        "the message deleted in the Maildir is still on the server"
    sandbox.run("--once").sane(0)
    assert data not in [d for _, d in sandbox.files("INBOX")], "the deleted message came back"
    assert_mirrors(sandbox, mailbox)


# ---- a server that never speaks ----

@pytest.mark.parametrize("mode", ["--check", "--once"])
def test_silent_server(sandbox, server, mode):
    server.use(scenarios.Silent())
    sandbox.write_config(server.port, timeout=2)
    before = sandbox.snapshot()
    run = sandbox.run(mode, timeout=30)
    run.failed()
    assert re.search(r"timed out|timeout|no answer", run.err, re.I), str(run)
    assert run.seconds < 8, f"took {run.seconds:.1f} s with timeout = 2\n{run}"
    assert_untouched(sandbox, before)


# ---- a wrong password ----

SECRET = "Wr0ng-pa55-Zq9x"

AUTH_STYLES = {
    "login": "IMAP4rev1",
    "plain-sasl-ir": "IMAP4rev1 AUTH=PLAIN SASL-IR",
    "plain": "IMAP4rev1 AUTH=PLAIN",
}


def secret_forms(user, password):
    """The password as it could leak: plain, quoted, and in its SASL encodings."""
    plain = f"\0{user}\0{password}".encode()
    return [password, f'"{password}"', base64.b64encode(plain).decode(),
            base64.b64encode(password.encode()).decode()]


@pytest.mark.parametrize("style", sorted(AUTH_STYLES))
def test_wrong_password(sandbox, server, style):
    scenario = Scenario(Mailbox.sample(), capabilities=AUTH_STYLES[style], password="right")
    server.use(scenario)
    sandbox.write_config(server.port, password=SECRET)
    before = sandbox.snapshot()
    for mode in ("--check", "--once"):
        run = sandbox.run(mode, "-vv")
        run.failed("AUTHENTICATIONFAILED", "Authentication failed (fake server)")
        for form in secret_forms("u", SECRET):
            assert form not in run.output, f"the password ({form!r}) leaked:\n{run}"
    assert any(SECRET.encode() in data or base64.b64encode(f"\0u\0{SECRET}".encode()) in data
               for _, data in scenario.log), "the fake never saw the password: test broken"
    assert_untouched(sandbox, before)
    assert not sandbox.files()


def test_password_not_traced_on_success(sandbox, server):
    mailbox = Mailbox.sample()
    server.use(Scenario(mailbox, password=SECRET))
    sandbox.write_config(server.port, password=SECRET)
    for mode in ("--check", "--once"):
        run = sandbox.run(mode, "-vv").sane(0)
        assert " S: " in run.err and " C: " in run.err, f"no protocol trace at -vv:\n{run}"
        for form in secret_forms("u", SECRET):
            assert form not in run.output, f"the password ({form!r}) leaked:\n{run}"
    assert_mirrors(sandbox, mailbox)
