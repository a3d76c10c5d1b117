"""Shared pieces of the sync tests (test_sync_*.py): an `acct` fixture that gives each test
its own mail user on the module's Dovecot and its own mailferry home, and helpers that read
both sides back: the server over IMAP, the Maildir from disk. The tests that run mailferryd
by themselves (against the scripted fakes of tests/fake/: test_hostile, test_throttle,
test_pop3) take its running part: Run, run_mailferryd, build_dir, sandbox_env and
write_fake_config.

    pytestmark = sync_module(profiles=CORE_PROFILES)   # one Dovecot per profile per file

    def test_x(acct):
        acct.deliver(message("a"))
        acct.once()                     # mailferryd --once -vv; asserts exit 0
        acct.assert_synced("INBOX")     # both sides hold the same messages, flags, bytes
"""

import dataclasses
import datetime
import os
import pathlib
import re
import secrets
import subprocess
import time
import uuid

import pytest

from harness.corpus import crlf

# The core rules run against every capability profile the harness offers.
CORE_PROFILES = ["full", "gmail", "o365", "imap4rev1"]
# Users of a module's server: one per test (so tests never see each other's mail).
USERS = {f"u{i:02d}": f"pw{i:02d}-{secrets.token_urlsafe(9)}" for i in range(48)}
# Folders Dovecot autocreates (tests/harness/configs.py).
AUTOCREATED = ("Sent", "Drafts", "Junk", "Trash", "Archive")

# Maildir info letters <-> IMAP flags (docs/SYNC.md rule 9).
LETTERS = {"D": "\\Draft", "F": "\\Flagged", "P": "$Forwarded", "R": "\\Answered",
           "S": "\\Seen", "T": "\\Deleted"}
IMAP_TO_LETTER = {v: k for k, v in LETTERS.items()}

REPO_DIR = pathlib.Path(__file__).resolve().parent.parent.parent
TIME = "/usr/bin/time"  # GNU time (Debian package time)
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "BUG at ")
SUMMARY_RE = re.compile(
    r"^(?P<account>\S+): (?P<folders>\d+) folders, (?P<down>\d+) down, (?P<up>\d+) up, "
    r"(?P<flags>\d+) flags, (?P<moves>\d+) moves, (?P<deletes>\d+) deletes, "
    r"(?P<messages>\d+) messages \((?P<unread>\d+) unread\)", re.M)


def sync_module(profiles=("full",), **server_options):
    """The pytestmark of a sync test file: the server's users, and one server per profile
    (its processes reused: the sync tests use no push)."""
    marks = [pytest.mark.mailserver(users=USERS, reuse_processes=True, **server_options)]
    if len(profiles) > 1 or profiles[0] != "full":
        marks.append(pytest.mark.parametrize("capability_profile", list(profiles),
                                             indirect=True))
    return marks


# ----- messages -----------------------------------------------------------------------------

def message(tag, body=None, msgid=True, date="Mon, 01 Jan 2024 10:00:00 +0000", eol="\r\n",
            headers=()):
    """A small message whose Subject (and Message-ID, unless msgid is False) carries tag.
    eol: "\\r\\n" (as IMAP sends) or "\\n" (as many Maildir writers store)."""
    lines = ["From: Bob <bob@example.test>", "To: alice@example.test", f"Subject: {tag}",
             f"Date: {date}"]
    if msgid:
        lines.append(f"Message-ID: <{tag}.{uuid.uuid4().hex[:12]}@sync.example.test>")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
              "Content-Transfer-Encoding: 8bit", *headers]
    text = body if body is not None else f"Body of {tag}.\nGrüße — ünïcødé ✓\nLast line.\n"
    text = text.replace("\r\n", "\n").replace("\n", eol)
    return (eol.join(lines) + eol + eol + text).encode()


# The first pull's messages (rule 7), subject: server flags; every system flag and $Forwarded.
FLAG_CASES = {
    "plain": (),
    "seen": ("\\Seen",),
    "flagged-unseen": ("\\Flagged",),
    "answered-seen": ("\\Answered", "\\Seen"),
    "draft": ("\\Draft", "\\Seen"),
    "forwarded": ("$Forwarded",),
    "all": ("\\Draft", "\\Flagged", "$Forwarded", "\\Answered", "\\Seen", "\\Deleted"),
}


def odd_message():
    """The first pull's "odd" message: binary-ish content and a long line, to survive as
    they are."""
    return message("odd", body="tab\there\x01\x7f é\n" + "x" * 5000 + "\n.\n..\nFrom the end\n")


def message_id(raw):
    m = re.search(rb"^Message-ID:\s*(<[^>\r\n]*>)", raw, re.M | re.I)
    return m.group(1).decode() if m else None


def subject(raw):
    m = re.search(rb"^Subject: ([^\r\n]*)", raw, re.M)
    return m.group(1).decode() if m else None


def body_of(raw):
    raw = crlf(raw)
    return raw.split(b"\r\n\r\n", 1)[1]


def letters(imap_flags):
    """IMAP flags -> sorted Maildir letters (flags without a letter are left out)."""
    return "".join(sorted(IMAP_TO_LETTER[f] for f in imap_flags if f in IMAP_TO_LETTER))


def imap_flags(letters_):
    return {LETTERS[c] for c in letters_}


def ts(date):
    """A datetime (or epoch seconds) as whole epoch seconds."""
    return int(date.timestamp()) if isinstance(date, datetime.datetime) else int(date)


# ----- the Maildir ----------------------------------------------------------------------------

@dataclasses.dataclass
class LocalMsg:
    path: pathlib.Path
    sub: str        # "new" or "cur"
    base: str       # the name up to ":2,"
    flags: str      # the info letters after ":2," ("" when none)
    info: bool      # the name has ":2,"
    raw: bytes
    mtime: float

    @property
    def subject(self):
        return subject(self.raw)

    @property
    def message_id(self):
        return message_id(self.raw)


def local_messages(folder_dir):
    """Every message of a Maildir folder (new/ and cur/), sorted by base name."""
    out = []
    for sub in ("new", "cur"):
        d = pathlib.Path(folder_dir) / sub
        for name in sorted(os.listdir(d)) if d.is_dir() else ():
            if name.startswith("."):
                continue
            base, sep, info = name.partition(":2,")
            p = d / name
            out.append(LocalMsg(p, sub, base, info, bool(sep), p.read_bytes(),
                                os.stat(p).st_mtime))
    return sorted(out, key=lambda m: m.base)


def tree_snapshot(root):
    """{relative path: (size, mtime_ns)} of every file and directory under root."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = pathlib.Path(dirpath) / n
            st = os.lstat(p)
            snap[str(p.relative_to(root))] = (st.st_size if p.is_file() else None,
                                              st.st_mtime_ns)
    return snap


def is_maildir(path):
    return all((pathlib.Path(path) / s).is_dir() for s in ("cur", "new", "tmp"))


# ----- running mailferryd --------------------------------------------------------------------

@dataclasses.dataclass(repr=False)
class Run:
    args: list
    rc: int
    out: str
    err: str
    seconds: float
    peak_rss_mb: float

    def __str__(self):
        return (f"mailferryd {' '.join(self.args)} -> exit {self.rc} in {self.seconds:.2f} s, "
                f"peak RSS {self.peak_rss_mb:.1f} MB\n--- stdout\n{self.out}--- stderr "
                f"(tail)\n{self.err[-8000:]}")

    __repr__ = __str__  # pytest shows assertion messages by repr

    @property
    def summary(self):
        """The --once summary line's counters as ints (it goes to stderr on failure)."""
        m = SUMMARY_RE.search(self.out) or SUMMARY_RE.search(self.err)
        assert m, f"no summary line:\n{self}"
        return {k: (v if k == "account" else int(v)) for k, v in m.groupdict().items()}

    def commands(self, conn=None):
        """The IMAP commands of a -vv trace, without tags: ["SELECT INBOX", ...]."""
        out = []
        for m in re.finditer(r"conn=(\d+) C: (\S+) (.*)$", self.err, re.M):
            if conn is None or int(m.group(1)) == conn:
                out.append(m.group(3))
        return out

    def downloads(self):
        """How many FETCH commands of the trace download bodies into the Maildir."""
        return sum(1 for c in self.commands() if "BODY.PEEK[]" in c and "INTERNALDATE" in c)

    def count(self, verb):
        """How many commands of the trace start with verb ("APPEND", "UID MOVE")."""
        return sum(1 for c in self.commands() if c.upper().startswith(verb.upper()))


def run_mailferryd(env, *args, timeout=180, rcs=(0, 1, 2), run_class=Run):
    """mailferryd ARGS to its end, with its peak RSS, as a run_class (Run or a subclass).
    Output goes to files (a -vv trace of a 50 MB transfer is large). An exit status not in
    rcs or any sanitizer report fails the test; rcs=None checks neither (a run killed on
    purpose).

    The peak RSS comes from /usr/bin/time, not from wait4() here: Linux carries a process's
    RSS high-water mark across exec, so a child forked straight from this Python process
    (which holds the test's 50 MB messages) would report Python's size."""
    n = getattr(env, "_sync_runs", 0) + 1
    env._sync_runs = n
    base = env.home.parent / f"run{n}"
    out_path, err_path, rss_path = (base.with_suffix(s) for s in (".out", ".err", ".rss"))
    cmd = [TIME, "-q", "-f", "%M", "-o", str(rss_path), str(env.binary("mailferryd")),
           *map(str, args)]
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, env=env.env, cwd=env.home, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"mailferryd {' '.join(map(str, args))} hung for {timeout} s:\n"
                    + err_path.read_text(errors="replace")[-8000:])
    rss = rss_path.read_text().split()
    run = run_class(list(map(str, args)), proc.returncode, out_path.read_text(errors="replace"),
                    err_path.read_text(errors="replace"), time.monotonic() - start,
                    int(rss[-1]) / 1024 if rss and rss[-1].isdigit() else float("nan"))
    if rcs is not None:
        assert run.rc in rcs, f"mailferryd died:\n{run}\n{rss_path.read_text()}"
        for mark in SANITIZER_MARKS:
            assert mark not in run.err, f"{mark!r} on stderr:\n{run}"
    return run


def build_dir():
    """$MF_BUILD_DIR, else build/ in the repository; the test fails when MF_BUILD_DIR names
    a build without daemon/mailferryd and is skipped when the default one has none."""
    build = os.environ.get("MF_BUILD_DIR")
    path = pathlib.Path(build or REPO_DIR / "build")
    if not (path / "daemon" / "mailferryd").exists():
        if build:
            pytest.fail(f"{path}/daemon/mailferryd is not built (MF_BUILD_DIR={build})")
        pytest.skip(f"{path}/daemon/mailferryd is not built; set MF_BUILD_DIR")
    return path


def sandbox_env(home):
    """The environment of a mailferryd living in `home` (its XDG directories below it);
    the sanitizers of an ASan+UBSan build stop it at their first report."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1"),
        "UBSAN_OPTIONS": os.environ.get(
            "UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:abort_on_error=1"),
    }
    if "LSAN_OPTIONS" in os.environ:
        env["LSAN_OPTIONS"] = os.environ["LSAN_OPTIONS"]
    return env


def config_value(v):
    """A string, number or list of them as the config writes it."""
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[ " + ", ".join(config_value(x) for x in v) + " ]"
    return str(v)


def write_fake_config(path, account, maildir, state_dir, port, imap):
    """A config (mode 0600) of one account syncing a scripted fake IMAP server on
    127.0.0.1:port without TLS, as user u with password p; imap: more keys of its imap
    block, or others for those."""
    block = {"host": "127.0.0.1", "port": port, "tls": "none", "user": "u", "password": "p"}
    block.update(imap)
    body = " ".join(f"{k} = {config_value(v)};" for k, v in block.items())
    path.write_text(
        f'general: {{ state_dir = "{state_dir}"; }};\n'
        f'accounts = ( {{ name = "{account}"; maildir = "{maildir}";\n'
        f'  imap: {{ {body} }}; }} );\n')
    path.chmod(0o600)


def sanitized(env):
    """Whether env's build is an ASan+UBSan one (-DMF_SANITIZE=ON)."""
    cache = env.build_dir / "CMakeCache.txt"
    return cache.exists() and "MF_SANITIZE:BOOL=ON" in cache.read_text(errors="replace")


def start_acl_server(mailserver_factory, monkeypatch, profile, users):
    """A Dovecot of the given profile with the acl plugin (a dovecot-acl file in a folder's
    directory then limits its rights); the users' special-use folders created up front."""
    from harness import configs
    conf = configs.DOVECOT_CONF.replace("mail_plugins = $mail_plugins notify",
                                        "mail_plugins = $mail_plugins notify acl")
    assert conf != configs.DOVECOT_CONF, "the harness's Dovecot config changed"
    monkeypatch.setattr(configs, "DOVECOT_CONF", conf + "plugin {\n  acl = vfile\n}\n")
    srv = mailserver_factory(capabilities=profile, users=users)
    for user in users:
        srv.doveadm("mailbox", "create", "-u", user, *AUTOCREATED)
    return srv


def set_acl(srv, user, folder, rights):
    """Limits the owner's rights on folder (RFC 4314 letters); None lifts the limit."""
    path = os.path.join(srv.folder_path(user, folder), "dovecot-acl")
    if rights is None:
        os.unlink(path)
    else:
        with open(path, "w") as f:
            f.write(f"owner {rights}\n")


# ----- one test's account ----------------------------------------------------------------------

class Account:
    """A mail user of the module's server and a mailferry account "test" syncing it."""

    name = "test"

    def __init__(self, srv, env, user):
        self.srv, self.env, self.user = srv, env, user
        self.root = env.maildir_root / self.name
        self.config()

    # config and runs
    def config(self, **extra):
        """Writes the config: extra account keys, imap={...} for keys of the imap block."""
        imap = dict(extra.pop("imap", {}))
        acct = self.env.account(name=self.name, user=self.user, imap=imap, **extra)
        self.env.write_config([acct])

    def once(self, *args, rc=0, trace=True):
        """mailferryd --once ARGS (with -vv: a protocol trace, unless trace is False);
        asserts the exit status (None: any)."""
        run = run_mailferryd(self.env, "--once", *(("-vv",) if trace else ()), *args)
        if rc is not None:
            assert run.rc == rc, f"expected exit {rc}:\n{run}"
        return run

    # the server
    def deliver(self, raw, folder="INBOX", flags=(), date=None):
        """APPEND on the server; returns the UID. date: datetime or epoch seconds."""
        return self.srv.deliver(self.user, raw, folder=folder, flags=flags,
                                internaldate=ts(date) if date is not None else None)

    def server(self, folder="INBOX", body=True):
        return self.srv.messages(self.user, folder, body=body)

    def server_by_subject(self, folder="INBOX"):
        return {subject(m.raw): m for m in self.server(folder)}

    def set_flags(self, uid, flags, folder="INBOX"):
        self.srv.set_flags(self.user, folder, uid, flags)

    def clear_flags(self, uid, flags, folder="INBOX"):
        self.srv.clear_flags(self.user, folder, uid, flags)

    def expunge(self, uid, folder="INBOX"):
        self.srv.expunge(self.user, folder, uid)

    def create_folder(self, name):
        self.srv.create_folder(self.user, name)

    def server_folders(self):
        return {f.name: f for f in self.srv.list_folders(self.user)}

    # the Maildir
    def path(self, folder="INBOX"):
        return self.root / folder

    def local(self, folder="INBOX"):
        return local_messages(self.path(folder))

    def local_by_subject(self, folder="INBOX"):
        msgs = self.local(folder)
        out = {m.subject: m for m in msgs}
        assert len(out) == len(msgs), f"{folder}: two local files with one subject: {msgs}"
        return out

    def write_local(self, raw, folder="INBOX", flags="", sub=None, mtime=None, base=None):
        """Drops a message into the Maildir as a reader would; returns its path. sub:
        new/ or cur/ (default: new/ when flags hold no S)."""
        d = self.path(folder)
        for s in ("cur", "new", "tmp"):
            (d / s).mkdir(parents=True, exist_ok=True)
        sub = sub or ("cur" if "S" in flags else "new")
        base = base or f"{int(time.time())}.R{uuid.uuid4().hex[:16]}.reader"
        name = base + (f":2,{''.join(sorted(flags))}" if flags or sub == "cur" else "")
        tmp = d / "tmp" / base
        tmp.write_bytes(raw)
        if mtime is not None:
            os.utime(tmp, (ts(mtime), ts(mtime)))
        path = d / sub / name
        os.rename(tmp, path)
        return path

    def rename_flags(self, msg, flags, sub=None):
        """A reader's flag change: the same file renamed with new info letters."""
        sub = sub or msg.sub
        new = msg.path.parent.parent / sub / f"{msg.base}:2,{''.join(sorted(flags))}"
        os.rename(msg.path, new)
        return new

    # both sides
    def assert_synced(self, folder="INBOX", local_folder=None):
        """The folder holds the same messages on both sides: one local file per server
        message (paired by Subject, which the tests keep unique), the same bytes (the
        server's CRLF form of the file), the same flags as letters, new/ exactly for the
        unseen ones, the file's mtime equal to INTERNALDATE; no duplicate on either side.
        Returns {subject: (server message, local message)}."""
        server = self.server(folder)
        local = self.local(local_folder or folder)
        ssubj = [subject(m.raw) for m in server]
        lsubj = [m.subject for m in local]
        assert sorted(ssubj) == sorted(lsubj), \
            f"{folder}: server {sorted(ssubj)} != Maildir {sorted(lsubj)}"
        assert len(set(ssubj)) == len(ssubj), f"{folder}: duplicates on the server: {ssubj}"
        assert len({m.base for m in local}) == len(local), f"{folder}: one base twice: {local}"
        by = {m.subject: m for m in local}
        pairs = {}
        for s in server:
            lm = by[subject(s.raw)]
            want = letters(s.flags)
            assert crlf(lm.raw) == s.raw, f"{folder}/{lm.path.name}: bytes differ from the server's"
            assert lm.flags == want, f"{folder}/{lm.path.name}: flags {lm.flags!r}, server {s.flags}"
            assert lm.sub == ("cur" if "S" in want else "new"), f"{lm.path} is in the wrong place"
            assert int(lm.mtime) == ts(s.internaldate), \
                f"{lm.path}: mtime {lm.mtime} != INTERNALDATE {s.internaldate}"
            pairs[subject(s.raw)] = (s, lm)
        return pairs


@pytest.fixture
def acct(mailserver, mf_env):
    """A fresh user of the module's server (its special-use folders created up front: see
    below) and a config syncing it into mf_env's Maildir root."""
    used = getattr(mailserver, "_sync_users_used", 0)
    names = sorted(mailserver.users)
    assert used < len(names), "more tests than users in USERS"
    mailserver._sync_users_used = used + 1
    user = names[used]
    # Dovecot 2.3 can panic ("Resource deadlock avoided" on dovecot.list.index.log) when
    # several connections SELECT autocreated folders that do not exist on disk yet, as
    # mailferry's parallel folder jobs do on a user's first sync: create them first.
    mailserver.doveadm("mailbox", "create", "-u", user, *AUTOCREATED)
    return Account(mailserver, mf_env, user)
