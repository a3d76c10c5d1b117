"""Crash safety of the sync engine (docs/SYNC.md rules 15 and 16, docs/STATE.md).

test_kill9_anywhere: a two-way sync of a few thousand messages in several folders, with
work on both sides (new mail, new files, flag changes, moves by rename and by a
neomutt-style rewrite + delete, local deletes, server expunges), is killed with SIGKILL at
random moments again and again (new work mixed in between some runs); then a run completes
and one more changes nothing. At the end every message the work asked for exists exactly
once on each side, in the right folder, with the right flags and the right bytes, nothing
deleted came back, no pending state row is left and no partial file is in new/ or cur/.
The random choices come from one seed, printed at the start and in every failure:
MF_CRASH_SEED=N replays the same work and the same kill delays (the moments a kill lands
on still depend on timing). MF_CRASH_KILLS sets the number of kills (default 32).

test_full_disk: the Maildir on a 2 MB tmpfs and more mail on the server than fits: the
run fails naming the folder and the full disk, leaves no partial message, and after the
tmpfs grows the next run fetches every message exactly once.

Run as root (the mail server harness and the tmpfs mount need it). MF_BUILD_DIR chooses
the build (ctest sets it); under an ASan build a sanitizer report fails the tests too.
"""

import base64
import contextlib
import dataclasses
import datetime
import os
import pathlib
import random
import re
import sqlite3
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from harness import corpus, imapwire  # noqa: E402

pytestmark = pytest.mark.mailserver(compress=False, reuse_processes=True)

ACCOUNT = "crash"
STATE_DOWNLOADING = 1  # docs/STATE.md: message.state
FOLDERS = ("INBOX", "Archive", "Work", "Lists/rust", "Sent")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "BUG at ")
IMAP_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "$Forwarded": "P", "\\Answered": "R",
                "\\Seen": "S", "\\Deleted": "T"}
LETTER_FLAGS = {v: k for k, v in IMAP_LETTERS.items()}
MSGID_RE = re.compile(rb"^message-id:[ \t]*(.*?)[ \t\r]*$", re.I | re.M)


# ----- messages ----------------------------------------------------------------------------

def split_message(raw):
    """(header, body) at the first empty line."""
    m = re.search(rb"\r?\n\r?\n", raw)
    return (raw[:m.start()], raw[m.end():]) if m else (raw, b"")


def msgid_of(raw):
    m = MSGID_RE.search(split_message(raw)[0])
    return m.group(1).decode() if m else None


def body_of(raw):
    """The body as a move keeps it: line ends and trailing white space aside."""
    return split_message(raw)[1].replace(b"\r\n", b"\n").rstrip()


def letters(flags):
    """IMAP flags -> sorted Maildir letters; anything unmapped shows as [name]."""
    out = [IMAP_LETTERS.get(f, f"[{f}]") for f in flags if f != "\\Recent"]
    return "".join(sorted(out))


def imap_flags(letter_string):
    return "(" + " ".join(LETTER_FLAGS[c] for c in letter_string) + ")"


def file_flags(name):
    """Maildir letters of a file name ('' for a name without info)."""
    _, sep, info = name.partition(":2,")
    return "".join(sorted(info)) if sep else ""


def big_message(rng, msgid, size):
    """A message with one base64 attachment of about `size` bytes."""
    data = base64.encodebytes(rng.randbytes(size * 3 // 4))
    head = (f"From: Big Sender <big@example.test>\nTo: alice@example.test\n"
            f"Subject: large attachment {msgid}\nDate: Mon, 01 Jul 2024 10:00:00 +0000\n"
            f"Message-ID: {msgid}\nMIME-Version: 1.0\n"
            f"Content-Type: application/octet-stream; name=\"blob.bin\"\n"
            f"Content-Transfer-Encoding: base64\n\n")
    return head.encode() + data


def neomutt_rewrite(raw):
    """What neomutt writes when it saves a message to another folder (shared NOTES.md): the
    header loses Status and X-Status, gains a Content-Length at its end, and is written
    with LF line ends; the body is kept as it was (CRLF stays CRLF: mixed line ends)."""
    head, body = split_message(raw)
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    keep, skip = [], False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not skip:
                keep.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        skip = name in (b"status", b"x-status", b"content-length")
        if not skip:
            keep.append(line)
    keep.append(b"Content-Length: %d" % len(body))
    return b"\n".join(keep) + b"\n\n" + body


# ----- what the work asked for -------------------------------------------------------------

@dataclasses.dataclass
class Expect:
    msgid: str
    folder: str
    flags: str          # Maildir letters, sorted
    local_raw: bytes    # the exact bytes of the Maildir file
    server_raw: bytes   # the exact bytes the server must hold
    history: list


@dataclasses.dataclass
class StateSnapshot:
    by_base: dict = dataclasses.field(default_factory=dict)    # (folder, base) -> (uid, state)
    uids: set = dataclasses.field(default_factory=set)         # (folder, uid) with a row
    unsettled: set = dataclasses.field(default_factory=set)    # (folder, Message-ID), uid 0


@dataclasses.dataclass
class Copy:
    folder: str
    flags: str
    raw: bytes
    uid: int = 0
    path: pathlib.Path = None


class Scenario:
    """The account, the model of what must exist, the work and the runs."""

    def __init__(self, mf_env, srv, tmp_path, seed, user="alice", folders=FOLDERS):
        self.env, self.srv, self.user = mf_env, srv, user
        self.folders = tuple(folders)
        self.seed = seed
        self.rng = random.Random(seed)
        self.root = mf_env.maildir_root / ACCOUNT
        self.db = mf_env.state_home / "mailferry" / f"{ACCOUNT}.db"
        self.logs = tmp_path / "runs"
        self.logs.mkdir()
        self.model = {}          # msgid -> Expect
        self.deleted = {}        # msgid -> how it was deleted
        self.touched = set()     # msgids a change was made to (each gets at most one)
        self.runs = []           # dicts: n, delay, killed, rc, seconds, out, err path
        self.events = []
        self.serial = 0
        self.state = StateSnapshot()  # taken before each round of work
        # Plain IMAP on loopback: with TLS, Dovecot's imap-login proxies each session and
        # goes on feeding a killed client's buffered commands (pipelined APPENDs) to its
        # imap process for up to a second after the kill, and its imap-login was seen to
        # panic (epoll_ctl) on killed TLS sessions, failing unrelated connections.
        mf_env.write_config(
            accounts=[mf_env.account(ACCOUNT, user=user, tls="none",
                                     imap={"folders": list(self.folders)})],
            general={"log_level": os.environ.get("MF_CRASH_LOG_LEVEL", "debug")})

    # ----- identities -------------------------------------------------------------------

    def new_msgid(self, kind):
        self.serial += 1
        return f"<{kind}.{self.seed}.{self.serial}@crash.example.test>"

    def note(self, text):
        self.events.append(text)

    def context(self, lines=60):
        """Seed, events and the runs, for failure messages."""
        out = [f"seed {self.seed} (replay: MF_CRASH_SEED={self.seed})", "runs:"]
        for r in self.runs[-lines:]:
            out.append(f"  #{r['n']}: {'killed' if r['killed'] else 'exit ' + str(r['rc'])} "
                       f"after {r['seconds']:.3f} s (delay {r['delay']}) "
                       f"{r['out'].strip()} {r['err']}")
        out.append("events:")
        out += ["  " + e for e in self.events[-lines:]]
        return "\n".join(out)

    # ----- the two sides ----------------------------------------------------------------

    def server_view(self, bodies=True):
        """{msgid: [Copy]} of every message on the server in self.folders."""
        item = "BODY.PEEK[]" if bodies else "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
        view = {}
        with self.srv.imap(self.user) as conn:
            for folder in self.folders:
                imapwire.check(conn.select(imapwire.quote(folder), readonly=True), "SELECT")
                typ, data = conn.uid("FETCH", "1:*", f"(UID FLAGS {item})")
                assert typ == "OK", (folder, data)
                for meta, lit in imapwire.split_fetch(data):
                    if lit is None:
                        continue
                    uid = int(re.search(rb"\bUID (\d+)", meta).group(1))
                    fl = re.search(rb"\bFLAGS \(([^)]*)\)", meta).group(1).decode().split()
                    copy = Copy(folder, letters(fl), lit if bodies else None, uid=uid)
                    view.setdefault(msgid_of(lit), []).append(copy)
        return view

    def local_view(self, bodies=True):
        """{msgid: [Copy]} of every file in new/ and cur/ of the account's Maildirs."""
        view = {}
        for folder in self.folders:
            for sub in ("new", "cur"):
                d = self.root / folder / sub
                if not d.is_dir():
                    continue
                for name in os.listdir(d):
                    path = d / name
                    raw = path.read_bytes()
                    view.setdefault(msgid_of(raw), []).append(
                        Copy(folder, file_flags(name), raw, path=path))
        return view

    def tmp_files(self):
        out = []
        for folder in self.folders:
            d = self.root / folder / "tmp"
            if d.is_dir():
                out += [f"{folder}/tmp/{n}" for n in os.listdir(d)]
        return out

    def state_snapshot(self):
        """What the state says while no mailferryd runs: {(folder, base): (uid, state)},
        the (folder, uid) pairs it knows, and the (folder, Message-ID) of rows whose UID
        is not known yet (an upload or a move not settled)."""
        snap = StateSnapshot()
        if not self.db.exists():
            return snap
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            rows = db.execute("SELECT f.name, m.base, m.uid, m.state, m.msgid FROM message m "
                              "JOIN folder f ON f.id = m.folder").fetchall()
        for folder, base, uid, state, msgid in rows:
            snap.by_base[(folder, base)] = (uid or 0, state)
            if uid:
                snap.uids.add((folder, uid))
            else:
                snap.unsettled.add((folder, msgid))
        return snap

    def pending_rows(self):
        if not self.db.exists():
            return []
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            return db.execute("SELECT f.name, m.base, m.uid, m.state, m.src_folder, m.src_uid "
                              "FROM message m JOIN folder f ON f.id = m.folder "
                              "WHERE m.state <> 0").fetchall()

    # ----- work ---------------------------------------------------------------------------

    def seed_server(self, count, big=0, folder=None):
        """New mail on the server (written into Dovecot's storage) across the folders, or
        all in `folder`."""
        batch = {}
        msgs = corpus.generate(count, folders=[folder] if folder else list(self.folders),
                               seed=self.rng.randrange(1 << 30), big=False)
        for m in msgs:
            msgid = self.new_msgid("srv")
            raw = m.raw.replace(m.message_id.encode(), msgid.encode())
            flags = tuple(f for f in m.flags if f in IMAP_LETTERS)
            batch.setdefault(m.folder, []).append((raw, flags, m.internaldate, msgid))
        for _ in range(big):
            msgid = self.new_msgid("srvbig")
            raw = big_message(self.rng, msgid, self.rng.randint(1_000_000, 3_000_000))
            batch.setdefault(self.rng.choice(self.folders), []).append(
                (raw, ("\\Seen",), datetime.datetime(2024, 7, 1), msgid))
        for folder, items in batch.items():
            self.srv.seed(self.user, folder, [(raw, fl, date) for raw, fl, date, _ in items])
            for raw, fl, _, msgid in items:
                served = corpus.crlf(raw)
                self.model[msgid] = Expect(msgid, folder, letters(fl), served, served,
                                           [f"new on server in {folder}"])
        self.note(f"server: {count + big} new messages ({big} large)")

    def write_local(self, count, big=0):
        """New files in the Maildir, in new/ (unread) or cur/ with flags."""
        msgs = corpus.generate(count, folders=list(self.folders), seed=self.rng.randrange(1 << 30),
                               big=False)
        items = [(m.folder, m.raw, m.message_id, m.internaldate) for m in msgs]
        for _ in range(big):
            msgid = self.new_msgid("localbig")
            items.append((self.rng.choice(self.folders),
                          big_message(self.rng, msgid, self.rng.randint(1_000_000, 2_500_000)),
                          msgid, datetime.datetime(2024, 8, 1)))
        for folder, raw, old_id, date in items:
            msgid = self.new_msgid("local")
            raw = raw.replace(old_id.encode(), msgid.encode())
            flags = self.rng.choice(["", "", "S", "FS", "RS", "F"])
            self.serial += 1
            name = f"{int(time.time())}.M{self.serial}P{os.getpid()}.crashtest"
            sub = "cur" if "S" in flags else "new"
            if flags:
                name += ":2," + flags
            d = self.root / folder / sub
            d.mkdir(parents=True, exist_ok=True)
            (self.root / folder / "tmp").mkdir(exist_ok=True)
            (self.root / folder / ("new" if sub == "cur" else "cur")).mkdir(exist_ok=True)
            path = d / name
            path.write_bytes(raw)
            ts = date.timestamp()
            os.utime(path, (ts, ts))
            self.model[msgid] = Expect(msgid, folder, flags, raw, corpus.crlf(raw),
                                       [f"new local file {folder}/{sub}/{name}"])
        self.note(f"local: {count + big} new files ({big} large)")

    def pick(self, view, n, need=lambda e: True):
        """Up to n untouched messages of the model with exactly one copy in `view`, in the
        folder the model says; marks them touched. Returns [(Expect, Copy)]."""
        out = []
        candidates = sorted(self.model)
        self.rng.shuffle(candidates)
        for msgid in candidates:
            if len(out) == n:
                break
            e = self.model[msgid]
            copies = view.get(msgid, [])
            if msgid in self.touched or len(copies) != 1 or copies[0].folder != e.folder \
                    or not need(e):
                continue
            self.touched.add(msgid)
            out.append((e, copies[0]))
        return out

    def toggled(self, flags):
        letter = self.rng.choice("SFR")
        return "".join(sorted(set(flags) ^ {letter}))

    def change_server_flags(self, sview, n):
        picked = self.pick(sview, n)
        with self.srv.imap(self.user) as conn:
            for e, c in picked:
                new = self.toggled(e.flags)
                imapwire.check(conn.select(imapwire.quote(c.folder)), "SELECT")
                imapwire.check(conn.uid("STORE", str(c.uid), "FLAGS.SILENT", imap_flags(new)),
                               "STORE")
                e.history.append(f"server flags {e.flags or '-'} -> {new or '-'} (UID {c.uid})")
                e.flags = new
        self.note(f"server: flags of {len(picked)} messages changed")

    def local_name(self, path, flags):
        """Where a reader (neomutt) puts a file with these flags: cur/ once seen, new/ while
        unread; no info part when no flag is left."""
        base = path.name.split(":2,")[0]
        sub = "cur" if "S" in flags else "new"
        name = base + (":2," + flags if flags else "")
        return path.parent.parent / sub / name

    def change_local_flags(self, lview, n):
        picked = self.pick(lview, n)
        for e, c in picked:
            new = self.toggled(e.flags)
            dest = self.local_name(c.path, new)
            os.rename(c.path, dest)
            e.history.append(f"local flags {e.flags or '-'} -> {new or '-'} "
                             f"({c.path.name} -> {dest.parent.name}/{dest.name})")
            e.flags = new
        self.note(f"local: flags of {len(picked)} messages changed")

    def other_folder(self, folder):
        return self.rng.choice([f for f in self.folders if f != folder])

    def move_by_rename(self, lview, sview, n):
        picked = self.pick(lview, n)
        for e, c in picked:
            dst = self.other_folder(e.folder)
            dest = self.root / dst / c.path.parent.name / c.path.name
            os.rename(c.path, dest)
            e.history.append(f"local rename {e.folder} -> {dst} ({c.path.name}); "
                             f"on the server then: {msgid_places(sview, e.msgid)}")
            e.folder = dst
        self.note(f"local: {len(picked)} messages moved by rename")

    def move_by_rewrite(self, lview, sview, n):
        """neomutt's save to another folder: a rewritten copy under a new name in the
        destination, then the original removed. D and P do not survive it, so messages
        with them are not chosen."""
        picked = self.pick(lview, n, need=lambda e: not set(e.flags) & set("DP"))
        for e, c in picked:
            dst = self.other_folder(e.folder)
            raw = neomutt_rewrite(c.raw)
            self.serial += 1
            name = f"{int(time.time())}.R{self.serial}.neomutt"
            dest = self.local_name(self.root / dst / "cur" / name, e.flags)
            dest.write_bytes(raw)
            st = os.stat(c.path)
            os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.unlink(c.path)
            copies = sview.get(e.msgid, [])
            # A UID MOVE needs the UID of the original: an upload or a move whose UID is
            # not recorded yet is sent again from the file (and its copy expunged).
            movable = len(copies) == 1 and (copies[0].folder, copies[0].uid) in self.state.uids
            e.history.append(f"local rewrite-move {e.folder} -> {dst} ({c.path.name} -> "
                             f"{dest.parent.name}/{dest.name}); on the server then: "
                             f"{msgid_places(sview, e.msgid)}")
            e.folder = dst
            e.local_raw = raw
            if not movable:  # the rewritten file is what goes up
                e.server_raw = corpus.crlf(raw)
        self.note(f"local: {len(picked)} messages moved by rewrite + delete")

    def delete_local(self, lview, n):
        picked = self.pick(lview, n)
        for e, c in picked:
            os.unlink(c.path)
            how = f"deleted locally ({c.folder}/{c.path.parent.name}/{c.path.name})"
            row = self.state.by_base.get((c.folder, c.path.name.split(":2,")[0]))
            if row and row[1] == STATE_DOWNLOADING:
                # Killed between the download's rename and its settle: the engine cannot
                # tell this from a download the kill cut short, and fetches it again
                # rather than risk expunging mail it never delivered (docs/STATE.md).
                e.history.append(how + " while its download was unsettled: fetched again")
                e.local_raw = e.server_raw
                continue
            self.forget(e, how)
        self.note(f"local: {len(picked)} files deleted")

    def expunge_server(self, sview, n):
        picked = self.pick(sview, n)
        with self.srv.imap(self.user) as conn:
            for e, c in picked:
                imapwire.check(conn.select(imapwire.quote(c.folder)), "SELECT")
                imapwire.check(conn.uid("STORE", str(c.uid), "+FLAGS.SILENT", "(\\Deleted)"),
                               "STORE")
                imapwire.check(conn.uid("EXPUNGE", str(c.uid)), "UID EXPUNGE")
                how = f"expunged on the server ({c.folder} UID {c.uid})"
                if (c.folder, c.uid) not in self.state.uids and \
                        (c.folder, e.msgid) in self.state.unsettled:
                    # The copy of an upload (or move) killed before its UID was recorded:
                    # not found on the server any more, it is sent again (docs/STATE.md).
                    e.history.append(how + " before its upload was settled: sent again")
                    e.server_raw = corpus.crlf(e.local_raw)
                    continue
                self.forget(e, how)
        self.note(f"server: {len(picked)} messages expunged")

    def forget(self, e, how):
        del self.model[e.msgid]
        self.deleted[e.msgid] = "; ".join(e.history + [how])

    def work(self, new_server, new_local, flags, moves, deletes, big=0):
        """One round of changes on both sides, made while no mailferryd runs."""
        self.note(f"-- work before run #{len(self.runs) + 1}")
        sview, lview = self.server_view(bodies=False), self.local_view()
        self.state = self.state_snapshot()
        self.change_server_flags(sview, flags)
        self.change_local_flags(lview, flags)
        self.move_by_rename(lview, sview, moves)
        self.move_by_rewrite(lview, sview, moves)
        self.delete_local(lview, deletes)
        self.expunge_server(sview, deletes)
        self.seed_server(new_server, big)
        self.write_local(new_local, big)

    # ----- running mailferryd ---------------------------------------------------------------

    def run(self, kill_after=None, timeout=300):
        """One `mailferryd --once`, SIGKILLed after kill_after seconds if still running.
        Returns the run's record (killed, rc, seconds, out, err)."""
        n = len(self.runs) + 1
        out_path, err_path = self.logs / f"run{n}.out", self.logs / f"run{n}.err"
        with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
            proc = subprocess.Popen([str(self.env.binary("mailferryd")), "--once"],
                                    env=self.env.env, cwd=self.env.home,
                                    stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
        start = time.monotonic()
        limit = kill_after if kill_after is not None else timeout
        killed = False
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.monotonic() - start
            if elapsed >= limit:
                proc.kill()
                _, status = os.waitpid(proc.pid, 0)
                killed = kill_after is not None
                if not killed:
                    pytest.fail(f"mailferryd --once hung for {timeout} s\n{self.context()}")
                break
            time.sleep(min(0.003, limit - elapsed))
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rec = {"n": n, "delay": None if kill_after is None else round(kill_after, 3),
               "killed": killed, "rc": proc.returncode, "seconds": seconds,
               "out": out_path.read_text(errors="replace"), "err": err_path}
        self.runs.append(rec)
        stderr = err_path.read_text(errors="replace")
        for mark in SANITIZER_MARKS:
            assert mark not in stderr, f"{mark!r} in run #{n}:\n{stderr[-8000:]}\n" \
                                       f"{self.context()}"
        if not killed:
            assert proc.returncode == 0, (
                f"run #{n} failed (exit {proc.returncode}) after a kill:\n"
                f"{stderr[-8000:]}\n{self.context()}")
        return rec

    def run_expecting_failure(self):
        """A --once that must fail on its own: exit 1, no signal, no sanitizer report."""
        n = len(self.runs) + 1
        out_path, err_path = self.logs / f"run{n}.out", self.logs / f"run{n}.err"
        with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
            res = subprocess.run([str(self.env.binary("mailferryd")), "--once"],
                                 env=self.env.env, cwd=self.env.home, stdin=subprocess.DEVNULL,
                                 stdout=fo, stderr=fe, timeout=300)
        rec = {"n": n, "delay": None, "killed": False, "rc": res.returncode, "seconds": 0,
               "out": out_path.read_text(errors="replace"), "err": err_path,
               "stderr": err_path.read_text(errors="replace")}
        self.runs.append(rec)
        for mark in SANITIZER_MARKS:
            assert mark not in rec["stderr"], rec["stderr"][-8000:]
        assert res.returncode == 1, f"exit {res.returncode}, expected 1:\n{rec['stderr'][-8000:]}"
        return rec

    # ----- the end ------------------------------------------------------------------------

    def check(self):
        """Every expected message exactly once per side, right folder, flags and bytes;
        nothing else; no partial files; no pending rows."""
        problems = []
        for side, view in (("server", self.server_view()), ("Maildir", self.local_view())):
            for msgid, copies in view.items():
                if msgid in self.model:
                    continue
                where = ", ".join(f"{c.folder} {c.flags or '-'}" for c in copies)
                if msgid in self.deleted:
                    problems.append(f"{side}: deleted message {msgid} is back ({where}); "
                                    f"it was: {self.deleted[msgid]}")
                else:
                    problems.append(f"{side}: unknown message {msgid} ({where})")
            for msgid, e in self.model.items():
                problems += self.check_one(side, e, view.get(msgid, []))
        tmp = self.tmp_files()
        if tmp:
            problems.append(f"files left in tmp/: {tmp[:10]}")
        pending = self.pending_rows()
        if pending:
            problems.append(f"pending state rows left: {pending[:10]}")
        return problems

    def check_one(self, side, e, copies):
        story = " | ".join(e.history)
        if len(copies) != 1:
            where = ", ".join(f"{c.folder} {c.flags or '-'}" for c in copies) or "nowhere"
            what = "missing" if not copies else f"{len(copies)} copies"
            return [f"{side}: {e.msgid} {what} ({where}); expected in {e.folder}: {story}"]
        c = copies[0]
        out = []
        if c.folder != e.folder:
            out.append(f"{side}: {e.msgid} in {c.folder}, expected in {e.folder}: {story}")
        if c.flags != e.flags:
            out.append(f"{side}: {e.msgid} flags {c.flags or '-'}, expected "
                       f"{e.flags or '-'}: {story}")
        want = e.server_raw if side == "server" else e.local_raw
        if c.raw != want:
            if body_of(c.raw) != body_of(want):
                kind = "a partial or damaged message" if len(c.raw) < len(want) else "bytes differ"
            else:
                kind = "the same body but other headers (uploaded instead of moved?)"
            where = c.path or f"UID {c.uid}"
            out.append(f"{side}: {e.msgid} ({where}): {kind}: {len(c.raw)} bytes, expected "
                       f"{len(want)}: {story}")
        return out


def msgid_places(view, msgid):
    copies = view.get(msgid, [])
    return ", ".join(f"{c.folder} UID {c.uid}" for c in copies) or "absent"


def summary_of(out):
    """The counters of a --once summary line: {'down': 3, 'up': 0, ...}."""
    return {k: int(v) for v, k in re.findall(r"(\d+) (down|up|flags|moves|deletes)\b", out)}


# ----- kill -9 -----------------------------------------------------------------------------

@pytest.mark.timeout(900)
def test_kill9_anywhere(mf_env, mailserver, tmp_path):
    seed = int(os.environ.get("MF_CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
    want_kills = int(os.environ.get("MF_CRASH_KILLS", "32"))
    print(f"test_kill9_anywhere: seed {seed} (replay with MF_CRASH_SEED={seed})")
    sc = Scenario(mf_env, mailserver, tmp_path, seed)
    t0 = time.monotonic()

    # A first state: mail on the server and in the Maildir, synced once.
    sc.seed_server(1200, big=2)
    sc.write_local(100, big=1)
    first = sc.run()
    sc.note(f"first sync: {first['out'].strip()} in {first['seconds']:.2f} s")

    # Work on both sides, then kills at random moments over the typical run time.
    sc.work(new_server=1200, new_local=150, flags=60, moves=20, deletes=15, big=3)
    estimate = max(first["seconds"], 0.5)
    kills = 0
    while kills < want_kills:
        if len(sc.runs) > 3 and sc.rng.random() < 0.25:
            sc.work(new_server=25, new_local=15, flags=8, moves=4, deletes=4,
                    big=sc.rng.choice([0, 0, 1]))
        delay = sc.rng.uniform(0.0, estimate)
        rec = sc.run(kill_after=delay)
        if rec["killed"]:
            kills += 1
            # A kill late in the estimate says the run takes longer than thought.
            estimate = max(estimate, delay * 1.3)
        else:
            # It finished: that is the run time now; give the next runs work again.
            estimate = max(0.5 * estimate + 0.5 * rec["seconds"], 0.1)
            sc.work(new_server=40, new_local=20, flags=10, moves=5, deletes=5, big=1)
        assert len(sc.runs) < 20 * want_kills, "the runs never stay long enough to be killed"

    # The end: one run completes, the next has nothing left to do.
    done = sc.run()
    last = sc.run()
    counts = summary_of(last["out"])
    problems = sc.check()
    if any(counts.get(k) for k in ("down", "up", "flags", "moves", "deletes")):
        problems.append(f"the run after a complete run still did something: {last['out']}")
    took = time.monotonic() - t0
    print(f"{kills} kills in {len(sc.runs)} runs, {took:.1f} s; last complete run: "
          f"{done['out'].strip()}")
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} problems)\n" + \
        sc.context()


def test_gone_from_both_sides(mf_env, mailserver, tmp_path):
    """The state a kill between an expunge (or unlink) and its state commit leaves: a row
    whose message is gone from both sides. The next sync forgets the row (it used to die
    on a BUG in the state store at every later run)."""
    sc = Scenario(mf_env, mailserver, tmp_path, seed=1, user="bob", folders=["Gone"])
    sc.seed_server(6)
    sc.run()
    sview, lview = sc.server_view(bodies=False), sc.local_view()
    for e, c in sc.pick(lview, 2):
        os.unlink(c.path)
        mailserver.expunge("bob", c.folder, sview[e.msgid][0].uid)
        sc.forget(e, "deleted on both sides")
    sc.run()
    last = sc.run()
    assert not any(summary_of(last["out"]).values()), last["out"]
    problems = sc.check()
    assert not problems, "\n".join(problems) + "\n" + sc.context()
    with contextlib.closing(sqlite3.connect(sc.db)) as db:
        assert db.execute("SELECT count(*) FROM message").fetchone()[0] == len(sc.model)


def test_move_of_unsettled_download(mf_env, mailserver, tmp_path):
    """The state a kill between a download batch's renames and its settle leaves: rows
    still `downloading` whose files are in cur/ or new/. A reader moving such a file to
    another folder (by rename, or neomutt's rewrite + delete) made a move the engine did
    not see: the file was uploaded to the destination and the original fetched again,
    one message twice on both sides. Now it is a move like any other."""
    sc = Scenario(mf_env, mailserver, tmp_path, seed=3, user="bob", folders=["MoveA", "MoveB"])
    sc.seed_server(8, folder="MoveA")
    mailserver.create_folder("bob", "MoveB")
    sc.run()
    problems = sc.check()
    assert not problems, "\n".join(problems)
    sview, lview = sc.server_view(bodies=False), sc.local_view()
    picked = sc.pick(lview, 4)
    with contextlib.closing(sqlite3.connect(sc.db)) as db, db:
        for e, c in picked:
            base = c.path.name.split(":2,")[0]
            assert db.execute("UPDATE message SET state = 1 WHERE base = ?", (base,)).rowcount
        # The killed job never saved the folder row: its listing starts over.
        db.execute("UPDATE folder SET highestmodseq = 0, uidnext = 0, new_mtime_s = 0 "
                   "WHERE name = 'MoveA'")
    sc.touched.clear()
    sc.state = sc.state_snapshot()
    moved = {e.msgid for e, _ in picked}
    lview = {k: v for k, v in lview.items() if k in moved}
    sc.move_by_rename(lview, sview, 2)
    sc.move_by_rewrite(lview, sview, 2)
    sc.run()
    last = sc.run()
    problems = sc.check()
    if any(summary_of(last["out"]).values()):
        problems.append(f"the run after a complete run still did something: {last['out']}")
    assert not problems, "\n".join(problems) + "\n" + sc.context()


def test_server_change_during_a_sync(mf_env, mailserver, tmp_path):
    """A flag changed on the server while a sync of the folder runs (here: during a long
    download; after a kill, an APPEND the killed run left in flight lands the same way)
    must reach the Maildir by the next sync. Dovecot reports a new HIGHESTMODSEQ after the
    job's own APPENDs; the folder's state once took it, so the next delta started after the
    other change and it was never seen."""
    sc = Scenario(mf_env, mailserver, tmp_path, seed=4, user="bob", folders=["Busy"])
    sc.seed_server(3, folder="Busy")
    sc.run()
    target = sorted(sc.model.values(), key=lambda e: e.msgid)[0]
    uid = sc.server_view(bodies=False)[target.msgid][0].uid
    msgid = sc.new_msgid("busybig")
    raw = big_message(sc.rng, msgid, 40_000_000)
    mailserver.seed("bob", "Busy", [(raw, ("\\Seen",), datetime.datetime(2024, 9, 2))])
    sc.model[msgid] = Expect(msgid, "Busy", "S", corpus.crlf(raw), corpus.crlf(raw), ["big"])
    sc.write_local(2)  # uploaded after the download: Dovecot answers with a HIGHESTMODSEQ

    proc = subprocess.Popen([str(mf_env.binary("mailferryd")), "--once"], env=mf_env.env,
                            cwd=mf_env.home, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        tmp = sc.root / "Busy" / "tmp"
        deadline = time.monotonic() + 60
        while not (tmp.is_dir() and any(p.stat().st_size > 1_000_000 for p in tmp.iterdir())):
            assert proc.poll() is None and time.monotonic() < deadline, \
                "the download was not seen in progress"
            time.sleep(0.002)
        new = "".join(sorted(set(target.flags) | {"F"}))
        mailserver.set_flags("bob", "Busy", uid, "\\Flagged")
        target.history.append(f"server flags {target.flags or '-'} -> {new} during a sync")
        target.flags = new
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")[-4000:]
    sc.run()
    last = sc.run()
    problems = sc.check()
    if any(summary_of(last["out"]).values()):
        problems.append(f"the run after a complete run still did something: {last['out']}")
    assert not problems, "\n".join(problems) + "\n" + sc.context()


# ----- a full disk -------------------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(path, size):
    """A tmpfs of `size` mounted on path for the block; unmounted after it, whatever
    happens (lazily if something still holds it)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                   check=True, capture_output=True)
    try:
        yield lambda new_size: subprocess.run(
            ["mount", "-o", f"remount,size={new_size}", str(path)], check=True,
            capture_output=True)
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.timeout(600)
def test_full_disk(mf_env, mailserver, tmp_path):
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root")
    sc = Scenario(mf_env, mailserver, tmp_path, seed=2, user="bob", folders=["Overflow"])
    # About 4 MB of mail for a 2 MB file system: a few small messages, most of 60-200 KB.
    items = []
    for i in range(36):
        msgid = sc.new_msgid("full")
        size = 2000 if i % 6 == 0 else sc.rng.randint(60_000, 200_000)
        items.append((big_message(sc.rng, msgid, size), ("\\Seen",) if i % 2 else (),
                      datetime.datetime(2024, 9, 1), msgid))
    mailserver.seed("bob", "Overflow", [(raw, fl, date) for raw, fl, date, _ in items])
    for raw, fl, _, msgid in items:
        served = corpus.crlf(raw)
        sc.model[msgid] = Expect(msgid, "Overflow", letters(fl), served, served, ["seeded"])
    total = sum(len(e.server_raw) for e in sc.model.values())
    assert total > 3 << 20

    with tmpfs(sc.root, "2m") as resize:
        run = sc.run_expecting_failure()
        err = (run["out"] + run["stderr"]).lower()
        lines = [ln for ln in err.splitlines() if "overflow" in ln and
                 ("disk full" in ln or "no space left on device" in ln)]
        assert lines, f"no line names the folder and the full disk:\n{run['stderr']}"
        # What made it to new/ or cur/ is whole: byte for byte a server message.
        local = sc.local_view()
        assert local, "nothing fitted: the test needs a disk that is full part of the way"
        for msgid, copies in local.items():
            assert msgid in sc.model, f"unknown file {copies[0].path}"
            for c in copies:
                assert c.raw == sc.model[msgid].local_raw, f"partial message {c.path}"
            assert len(copies) == 1, f"{msgid} twice: {[c.path for c in copies]}"
        assert sc.tmp_files() == [], f"left in tmp/: {sc.tmp_files()}"
        assert sc.pending_rows() == [], sc.pending_rows()
        fitted = len(local)

        resize("64m")
        done = sc.run()
        counts = summary_of(done["out"])
        assert counts.get("down") == len(sc.model) - fitted, done["out"]
        last = sc.run()
        assert not any(summary_of(last["out"]).values()), last["out"]
        problems = sc.check()
        assert not problems, "\n".join(problems) + "\n" + sc.context()
