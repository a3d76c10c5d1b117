"""What the private servers of the harness share: MailServer (Dovecot + Postfix,
mailserver.py) and CyrusServer (cyrus.py) are PrivateServers.

A PrivateServer lives in one temporary directory (root) with its own CA, runs every master
process under supervise.py (nothing outlives the instance: see README "No leaks"), keeps its
ports across restarts, and offers the same IMAP clients and mailbox helpers (deliver,
messages, set_flags, expunge, create_folder, list_folders, wait_for_messages, ...), so a test
can take either server. Each subclass brings its own set-up (_prepare), ports
(_assign_ports), configuration (_write_configs), processes (_launch), readiness test
(_wait_ready), logs and status().
"""

import atexit
import contextlib
import imaplib
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import weakref

from . import imapwire, procs
from .errors import HarnessError

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))
SUPERVISE = os.path.join(HARNESS_DIR, "supervise.py")
PYTHON = "/usr/bin/python3"
HOST = procs.HOST


class PortInUse(HarnessError):
    """A port picked for the instance belongs to somebody else: start() picks new ones."""


_LIVE = weakref.WeakSet()


@atexit.register
def _close_all():
    for srv in list(_LIVE):
        srv.close()


class PrivateServer:
    """The common part of MailServer and CyrusServer; see the module docstring.

    users: {name: password}; default alice and bob with random passwords.
    base_dir: where the temporary directory goes (default: the system temp dir; it and its
    parents must be searchable by the servers' users).
    """

    host = HOST
    domain = "example.test"
    tmp_prefix = None       # the temporary directory's prefix, e.g. "mfh-"
    run_as = None           # the user that must reach the files below root, for errors
    log_name = None         # log_text()'s default log
    log_width = None        # log_tail() cuts lines at this many characters (None: never)

    def __init__(self, users=None, base_dir=None, start_timeout=15.0):
        self.users = dict(users) if users else {
            name: f"{name}-{secrets.token_urlsafe(12)}" for name in ("alice", "bob")}
        self.base_dir = base_dir or tempfile.gettempdir()
        self.start_timeout = start_timeout
        self.root = None
        self.ca_file = None
        self.fingerprint = None
        self._supervisors = {}
        self._ports_fixed = False
        self.startup_seconds = None

    # ----- life cycle -------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @property
    def running(self):
        return bool(self._supervisors)

    def start(self):
        """Start the server; returns self once it is ready (every port serves it)."""
        if self.running:
            return self
        t0 = time.monotonic()
        _LIVE.add(self)
        if self.root is None:
            self._prepare()
        try:
            for attempt in range(6):
                self._write_configs()
                try:
                    self._launch()
                    self._wait_ready()
                    break
                except PortInUse:
                    self._stop_processes()
                    if self._ports_fixed or attempt == 5:
                        raise
                    self._assign_ports()
        except BaseException:
            self._stop_processes()
            raise
        self._ports_fixed = True  # a restart keeps the ports clients were given
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self):
        """Stop every process of this instance and wait until none is left. The files (mail,
        logs) stay: start() again continues with the same mail, ports and CA."""
        self._stop_processes()

    def restart(self):
        self.stop()
        return self.start()

    def close(self, keep=None):
        """stop() and remove the temporary directory (kept when keep is true or
        $MF_KEEP_SERVER is set, for a post-mortem: the path is in describe())."""
        self.stop()
        _LIVE.discard(self)
        if self.root is None or not os.path.isdir(self.root):
            return
        if keep is None:
            keep = bool(os.environ.get("MF_KEEP_SERVER"))
        if keep:
            open(os.path.join(self.root, "KEEP"), "w").close()
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def processes(self):
        """Live processes of this instance (empty once stopped)."""
        return procs.processes_under(self.root) if self.root else []

    # ----- set-up -----------------------------------------------------------------------

    def _make_root(self):
        """The instance's temporary directory, its owner file and its name (instance)."""
        procs.reap_stale_instances(self.base_dir, self.tmp_prefix)
        self.root = tempfile.mkdtemp(prefix=self.tmp_prefix, dir=self.base_dir)
        os.chmod(self.root, 0o711)  # the servers' users must reach their files below
        with open(os.path.join(self.root, "owner"), "w") as f:
            f.write(f"{os.getpid()} {procs.own_start_time()}\n")
        self._check_searchable()
        self.instance = os.path.basename(self.root)  # tmp_prefix and a random part

    def _check_searchable(self):
        path = os.path.dirname(self.root)
        while path != "/":
            if not os.stat(path).st_mode & 0o001:
                raise HarnessError(f"{path} is not searchable by others; the `{self.run_as}` "
                                   f"user must reach {self.root} (choose another base_dir)")
            path = os.path.dirname(path)

    # ----- logs -----------------------------------------------------------------------------

    def log_text(self, name=None):
        """One log's text (default: log_name); a directory's files are joined, oldest
        first."""
        path = self.logs[name or self.log_name]
        try:
            if os.path.isdir(path):
                files = sorted((os.path.join(path, f) for f in os.listdir(path)),
                               key=os.path.getmtime)
                return "".join(_read(f) for f in files)
            return _read(path)
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=30, width=None):
        """The last lines of every log, each cut at width characters (default log_width;
        Cyrus's telemetry holds whole messages)."""
        width = width or self.log_width
        out = []
        for name in self.logs:
            text = self.log_text(name).splitlines()[-lines:]
            if text:
                out.append(f"--- {name} ---")
                out += [t if not width or len(t) <= width else t[:width] + "..." for t in text]
        return "\n".join(out)

    def describe(self):
        """A few lines for failure output: where everything is."""
        lines = self._describe_head() + [f"  ca_file {self.ca_file}"]
        if self.root:
            lines += [f"  log {name}: {path}" for name, path in self.logs.items()]
        return "\n".join(lines)

    # ----- processes ----------------------------------------------------------------------

    def _supervise(self, name, cmd, grace, term_all=False):
        """Run cmd under supervise.py, its output appended to the log `NAME-output`."""
        out = open(self.logs[f"{name}-output"], "ab")
        opts = ["--grace", str(grace)] + (["--term-all"] if term_all else [])
        try:
            proc = subprocess.Popen(
                [PYTHON, "-I", "-S", SUPERVISE, *opts, "--", *cmd],
                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, cwd=self.root,
                start_new_session=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                             "TZ": "UTC", "LANG": "C"})
        finally:
            out.close()
        self._supervisors[name] = proc

    def _check_supervisors(self):
        """While waiting for readiness: a master that exited is a failed start."""
        for name, proc in self._supervisors.items():
            if proc.poll() is not None:
                self._startup_failed(f"{name} exited with status {proc.returncode}")

    def _stop_processes(self):
        supervisors, self._supervisors = self._supervisors, {}
        for proc in supervisors.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in supervisors.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdin:
                proc.stdin.close()
        # Only reachable if a supervisor was killed from outside: clean up after it.
        if self.root:
            for _ in range(100):
                left = self.processes()
                if not left:
                    break
                procs.kill_pids(left)
                time.sleep(0.01)

    # ----- clients ------------------------------------------------------------------------

    def address(self, user):
        return f"{user}@{self.domain}"

    @property
    def pin(self):
        """The server certificate pin as a config's `fingerprint` takes it."""
        return "sha256:" + self.fingerprint

    def ssl_context(self):
        """A client TLS context trusting only this server's CA (hostname checked)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def imap_connect(self, tls="implicit", timeout=30):
        """An IMAP connection (not logged in). tls: "implicit", "starttls" or "none"."""
        if tls == "implicit":
            return imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=self.ssl_context(),
                                     timeout=timeout)
        conn = imaplib.IMAP4(self.host, self.imap_port, timeout=timeout)
        if tls == "starttls":
            conn.starttls(self.ssl_context())
        elif tls != "none":
            raise ValueError(tls)
        return conn

    def _plain(self, user):
        return f"\0{user}\0{self.users[user]}".encode()

    @contextlib.contextmanager
    def imap(self, user, tls="implicit"):
        """A logged-in imaplib connection as `user` (closed on exit). It authenticates with
        AUTHENTICATE PLAIN, so any password works (imaplib's LOGIN is ASCII only)."""
        conn = self.imap_connect(tls)
        try:
            conn.authenticate("PLAIN", lambda _: self._plain(user))
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    # ----- mailbox helpers (IMAP over TLS, verified against the CA) ------------------------

    def _append_date(self, internaldate):
        """The date deliver() gives APPEND (None: the server picks)."""
        return internaldate

    def deliver(self, user, raw, folder="INBOX", flags=(), internaldate=None):
        """APPEND one message; returns its UID. IMAP sends CRLF: imaplib turns bare LF line
        ends into CRLF, as any IMAP client must."""
        flag_list = imapwire.flag_list(flags) if flags else None
        with self.imap(user) as conn:
            data = imapwire.check(conn.append(imapwire.quote(folder), flag_list,
                                              self._append_date(internaldate), raw), "APPEND")
        m = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        return int(m.group(1)) if m else None

    def create_folder(self, user, name):
        with self.imap(user) as conn:
            imapwire.check(conn.create(imapwire.quote(name)), f"CREATE {name}")

    def delete_folder(self, user, name):
        with self.imap(user) as conn:
            imapwire.check(conn.delete(imapwire.quote(name)), f"DELETE {name}")

    def list_folders(self, user):
        """Every folder of `user` as Folder objects (names in UTF-8)."""
        with self.imap(user) as conn:
            data = imapwire.check(conn.list('""', '"*"'), "LIST")
        return imapwire.parse_list(data)

    def messages(self, user, folder="INBOX", body=True, uids="1:*"):
        """The folder's messages (or those of `uids`: an int, a list or a UID set string) in
        UID order, read over IMAPS with BODY.PEEK (no \\Seen set). body=False leaves .raw
        None and is much faster on big folders."""
        items = "(UID FLAGS INTERNALDATE RFC822.SIZE" + (" BODY.PEEK[])" if body else ")")
        with self.imap(user) as conn:
            imapwire.check(conn.select(imapwire.quote(folder), readonly=True),
                           f"SELECT {folder}")
            data = imapwire.check(conn.uid("FETCH", imapwire.uid_set(uids), items), "FETCH")
        # Another session's flag change may come as a FETCH without UID among the
        # answers: it is news, not one of the messages asked for.
        msgs = [imapwire.parse_message(meta, lit) for meta, lit in imapwire.split_fetch(data)
                if re.search(rb"\bUID \d+", meta)]
        return sorted(msgs, key=lambda m: m.uid)

    def message(self, user, folder, uid):
        """One message by UID (KeyError when there is none)."""
        for m in self.messages(user, folder, uids=uid):
            if m.uid == uid:
                return m
        raise KeyError(f"{user} {folder} UID {uid}")

    def _store(self, user, folder, uids, op, flags):
        with self.imap(user) as conn:
            imapwire.check(conn.select(imapwire.quote(folder)), f"SELECT {folder}")
            imapwire.check(conn.uid("STORE", imapwire.uid_set(uids), op,
                                    imapwire.flag_list(flags)), "STORE")

    def set_flags(self, user, folder, uid, flags):
        """Add flags (str or iterable) to message(s) `uid` (int, iterable or "1:*")."""
        self._store(user, folder, uid, "+FLAGS.SILENT", flags)

    def clear_flags(self, user, folder, uid, flags):
        self._store(user, folder, uid, "-FLAGS.SILENT", flags)

    def expunge(self, user, folder, uid):
        """Remove message(s) `uid` for good (UID EXPUNGE: other \\Deleted ones stay)."""
        with self.imap(user) as conn:
            imapwire.check(conn.select(imapwire.quote(folder)), f"SELECT {folder}")
            imapwire.check(conn.uid("STORE", imapwire.uid_set(uid), "+FLAGS.SILENT",
                                    "(\\Deleted)"), "STORE")
            imapwire.check(conn.uid("EXPUNGE", imapwire.uid_set(uid)), "UID EXPUNGE")

    def wait_for_messages(self, user, folder="INBOX", count=1, timeout=10.0, body=True):
        """Poll until the folder holds at least `count` messages; returns messages()."""
        deadline = time.monotonic() + timeout
        while self.status(user, folder)["MESSAGES"] < count:
            if time.monotonic() > deadline:
                raise HarnessError(f"{user}/{folder}: fewer than {count} messages after "
                                   f"{timeout} s\n{self.describe()}\n{self.log_tail(10)}")
            time.sleep(0.05)
        return self.messages(user, folder, body=body)


def _read(path):
    with open(path, errors="replace") as f:
        return f.read()
