"""A private Cyrus IMAP 3.6 server, the second IMAP implementation the sync tests run
against beside Dovecot (MailServer): IMAP with STARTTLS and IMAPS on 127.0.0.1, its own CA,
users with passwords in a private sasldb, all under one temporary directory.

    with CyrusServer() as srv:          # or srv = CyrusServer().start() ... srv.close()
        srv.deliver("alice", raw)
        msgs = srv.messages("alice", "INBOX")

Its IMAP helpers (deliver, messages, set_flags, expunge, create_folder, list_folders,
status, ...) behave as MailServer's, so a test can take either server. There is no POP3,
LMTP or SMTP here.

Debian's cyrus-imapd package conflicts with dovecot-imapd (both provide imap-server), so
the harness runs Cyrus without installing it: cyrus-common (master, libraries, tools) and
sasl2-bin come from scripts/deps.list, and scripts/fetch-cyrus unpacks the imapd binary of
the same version into /var/cache/mailferry on first use. When any of that is missing and
cannot be had, start() raises CyrusUnavailable saying why (tests turn it into a skip).

Cyrus logs only to syslog, which is lost where no syslog daemon listens on /dev/log (as in
the test containers); its lines carry the instance name as prefix where one does. What
the harness keeps is Cyrus's protocol telemetry: every IMAP session of a harness user is
written to config/log/USER/ (see logs and log_tail()).

Must run as root: master starts as root and runs everything as the `cyrus` user, which owns
the instance's files. Every process runs under supervise.py, as MailServer's do: nothing
outlives the instance.
"""

import atexit
import contextlib
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import weakref

from . import imapwire, procs
from .errors import HarnessError
from .tls import TestPKI

__all__ = ["CyrusServer", "CyrusUnavailable"]

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(os.path.dirname(HARNESS_DIR))
SUPERVISE = os.path.join(HARNESS_DIR, "supervise.py")
FETCH_CYRUS = os.path.join(REPO_DIR, "scripts", "fetch-cyrus")
PYTHON = "/usr/bin/python3"
CYRUS_BIN = "/usr/lib/cyrus/bin"        # cyrus-common: master, ctl_cyrusdb, ...
MASTER = os.path.join(CYRUS_BIN, "master")
SASLPASSWD = "/usr/sbin/saslpasswd2"    # sasl2-bin
CYRUS_USER = "cyrus"                    # created by cyrus-common; master runs as it
TMP_PREFIX = "mfc-"
# namespace -> imapd.conf's (altnamespace, unixhierarchysep).
NAMESPACES = {"alt": ("yes", "yes"), "traditional": ("no", "no")}
HOST = procs.HOST


class CyrusUnavailable(HarnessError):
    """Cyrus cannot run here for a reason outside the project (a package missing and not
    installable, no archive to fetch imapd from, not root): the message says which."""


class _PortInUse(HarnessError):
    pass


_LIVE = weakref.WeakSet()


@atexit.register
def _close_all():
    for srv in list(_LIVE):
        srv.close()


def imapd_tree():
    """The directory holding usr/lib/cyrus/bin/imapd: $MF_CYRUS_DIR, else what
    scripts/fetch-cyrus unpacked (fetching it on first use)."""
    tree = os.environ.get("MF_CYRUS_DIR")
    if tree:
        if not os.access(os.path.join(tree, "usr/lib/cyrus/bin/imapd"), os.X_OK):
            raise CyrusUnavailable(f"MF_CYRUS_DIR={tree} holds no usr/lib/cyrus/bin/imapd")
        return tree
    res = subprocess.run([FETCH_CYRUS], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise CyrusUnavailable(f"scripts/fetch-cyrus failed: {res.stderr.strip()}")
    return res.stdout.strip()


IMAPD_CONF = """\
# Private Cyrus of the mailferry test harness. Generated; see tests/harness/cyrus.py.
servername: @INSTANCE@
syslog_prefix: @INSTANCE@
configdirectory: @ROOT@/config
defaultpartition: default
partition-default: @ROOT@/spool
proc_path: @ROOT@/config/proc
mboxname_lockpath: @ROOT@/config/lock
lmtpsocket: @ROOT@/config/socket/lmtp
idlesocket: @ROOT@/config/socket/idle
notifysocket: @ROOT@/config/socket/notify
sievedir: @ROOT@/config/sieve
altnamespace: @ALTNAMESPACE@
unixhierarchysep: @UNIXHIERARCHYSEP@
# A user's INBOX is created at the first login.
autocreate_quota: 0
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: @ROOT@/sasldb2
tls_server_cert: @CERT@
tls_server_key: @KEY@
tls_session_timeout: 0
"""

CYRUS_CONF = """\
# Generated; see tests/harness/cyrus.py. Master passes no -C on: every command names it.
START {
  recover cmd="@CYRUS_BIN@/ctl_cyrusdb -C @ROOT@/imapd.conf -r"
}
SERVICES {
  imap cmd="@IMAPD@ -C @ROOT@/imapd.conf" listen="@HOST@:@IMAP_PORT@" prefork=0
  imaps cmd="@IMAPD@ -s -C @ROOT@/imapd.conf" listen="@HOST@:@IMAPS_PORT@" prefork=0
}
EVENTS {
}
"""


def _render(template, values):
    for key, value in values.items():
        template = template.replace("@" + key + "@", str(value))
    return template


class CyrusServer:
    """A private Cyrus imapd. See the module docstring and the attributes below.

    users: {name: password}; default alice and bob with random passwords. Names have no
    domain part: Cyrus refuses `alice@example.test` without virtual domains.
    namespace: "alt", upstream's default: folders beside INBOX, "/" as separator
    (`Lists/rust`); or "traditional", what Debian's own imapd.conf sets: every folder below
    INBOX, "." as separator (`INBOX.Lists.rust`), none can be created beside INBOX.
    base_dir: where the temporary directory goes (default: the system temp dir; it and its
    parents must be searchable by the `cyrus` user).
    """

    host = HOST
    domain = "example.test"
    name = "cyrus"

    def __init__(self, users=None, namespace="alt", base_dir=None, start_timeout=15.0):
        if namespace not in NAMESPACES:
            raise ValueError(f"unknown namespace {namespace!r}")
        self.namespace = namespace
        self.users = dict(users) if users else {
            name: f"{name}-{secrets.token_urlsafe(12)}" for name in ("alice", "bob")}
        self.base_dir = base_dir or tempfile.gettempdir()
        self.start_timeout = start_timeout
        self.root = None
        self.ca_file = None
        self.fingerprint = None
        self.imapd = None
        self.imap_port = self.imaps_port = None
        self._supervisor = None
        self._ports_fixed = False
        self.startup_seconds = None

    # ----- life cycle -------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @property
    def running(self):
        return self._supervisor is not None

    def start(self):
        """Start Cyrus; returns self once both ports answer with this instance's greeting.
        Raises CyrusUnavailable when Cyrus cannot run here at all."""
        if self.running:
            return self
        t0 = time.monotonic()
        if self.root is None:
            self._check_platform()
            self.imapd = os.path.join(imapd_tree(), "usr/lib/cyrus/bin/imapd")
            self._prepare()
        _LIVE.add(self)
        try:
            for attempt in range(6):
                self._write_configs()
                try:
                    self._launch()
                    self._wait_ready()
                    break
                except _PortInUse:
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
        """Stop every process of this instance and wait until none is left. The files stay:
        start() again continues with the same mail, ports and CA."""
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

    def _check_platform(self):
        if os.geteuid() != 0:
            raise CyrusUnavailable("Cyrus's master must start as root (it runs as `cyrus`)")
        for path, package in ((MASTER, "cyrus-common"), (SASLPASSWD, "sasl2-bin")):
            if not os.access(path, os.X_OK):
                raise CyrusUnavailable(f"{path} is missing: install {package} "
                                       f"(scripts/install-deps)")
        try:
            cyrus = pwd.getpwnam(CYRUS_USER)
        except KeyError:
            raise CyrusUnavailable("no `cyrus` user (cyrus-common creates it)") from None
        self.cyrus_uid, self.cyrus_gid = cyrus.pw_uid, cyrus.pw_gid

    def _prepare(self):
        procs.reap_stale_instances(self.base_dir, TMP_PREFIX)
        self.root = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.base_dir)
        os.chmod(self.root, 0o711)  # the cyrus user must reach its files below
        with open(os.path.join(self.root, "owner"), "w") as f:
            f.write(f"{os.getpid()} {procs.own_start_time()}\n")
        self._check_searchable()
        self.instance = "mfc-" + os.path.basename(self.root)[len(TMP_PREFIX):]
        os.makedirs(os.path.join(self.root, "log"), mode=0o755)
        dirs = ["config", "spool", "run"] + [f"config/{d}" for d in
                                            ("socket", "proc", "lock", "log", "sieve")]
        dirs += [f"config/log/{user}" for user in self.users]  # telemetry of each user
        for d in dirs:
            os.makedirs(os.path.join(self.root, d), mode=0o750)
            os.chown(os.path.join(self.root, d), self.cyrus_uid, self.cyrus_gid)
        self.pki = TestPKI(os.path.join(self.root, "tls"))
        os.chown(self.pki.key_file, self.cyrus_uid, self.cyrus_gid)
        self.ca_file, self.fingerprint = self.pki.ca_file, self.pki.fingerprint
        self._write_users()
        self._assign_ports()

    def _check_searchable(self):
        path = os.path.dirname(self.root)
        while path != "/":
            if not os.stat(path).st_mode & 0o001:
                raise HarnessError(f"{path} is not searchable by others; the `cyrus` user "
                                   f"must reach {self.root} (choose another base_dir)")
            path = os.path.dirname(path)

    def _write_users(self):
        db = os.path.join(self.root, "sasldb2")
        # SASL looks users up in the realm of the server's name (servername, the instance).
        for name, password in self.users.items():
            if "@" in name:
                raise ValueError(f"{name}: Cyrus takes user names without a domain part")
            res = subprocess.run([SASLPASSWD, "-f", db, "-u", self.instance, "-p", "-c", name], input=password,
                                 capture_output=True, text=True, timeout=30)
            if res.returncode != 0:
                raise HarnessError(f"saslpasswd2 {name} failed: {res.stderr.strip()}")
        os.chown(db, self.cyrus_uid, self.cyrus_gid)
        os.chmod(db, 0o600)

    def _assign_ports(self):
        self.imap_port, self.imaps_port = procs.pick_ports(2)

    def _values(self):
        return {"ROOT": self.root, "INSTANCE": self.instance, "HOST": self.host,
                "IMAP_PORT": self.imap_port, "IMAPS_PORT": self.imaps_port,
                "CERT": self.pki.cert_file, "KEY": self.pki.key_file,
                "CYRUS_BIN": CYRUS_BIN, "IMAPD": self.imapd,
                "ALTNAMESPACE": NAMESPACES[self.namespace][0],
                "UNIXHIERARCHYSEP": NAMESPACES[self.namespace][1]}

    def _write_configs(self):
        values = self._values()
        for name, template in (("imapd.conf", IMAPD_CONF), ("cyrus.conf", CYRUS_CONF)):
            with open(os.path.join(self.root, name), "w") as f:
                f.write(_render(template, values))

    # ----- logs -----------------------------------------------------------------------------

    @property
    def logs(self):
        """{name: path}: master's own output and each user's telemetry directory (one file
        per imapd process, every command and answer of its sessions)."""
        logs = {"master-output": os.path.join(self.root, "log", "master.out")}
        for user in self.users:
            logs[f"telemetry-{user}"] = os.path.join(self.root, "config", "log", user)
        return logs

    def log_text(self, name="master-output"):
        """One log's text; a telemetry directory's files are joined, oldest first."""
        path = self.logs[name]
        try:
            if os.path.isdir(path):
                files = sorted((os.path.join(path, f) for f in os.listdir(path)),
                               key=os.path.getmtime)
                return "".join(_read(f) for f in files)
            return _read(path)
        except FileNotFoundError:
            return ""

    def describe(self):
        """A few lines for failure output: where everything is."""
        lines = [f"cyrus server {self.root} ({self.imapd}, namespace {self.namespace})",
                 f"  imap {self.imap_port} imaps {self.imaps_port} on {self.host}",
                 f"  ca_file {self.ca_file}"]
        if self.root:
            lines += [f"  log {name}: {path}" for name, path in self.logs.items()]
        return "\n".join(lines)

    def log_tail(self, lines=30, width=300):
        """The last lines of every log, each cut at width characters (telemetry holds
        whole messages)."""
        out = []
        for name in self.logs:
            text = self.log_text(name).splitlines()[-lines:]
            if text:
                out.append(f"--- {name} ---")
                out += [t if len(t) <= width else t[:width] + "..." for t in text]
        return "\n".join(out)

    # ----- processes ----------------------------------------------------------------------

    def _launch(self):
        out = open(self.logs["master-output"], "ab")
        # -D: master keeps stdout and stderr (our log file) instead of closing them.
        cmd = [MASTER, "-D", "-C", os.path.join(self.root, "imapd.conf"),
               "-M", os.path.join(self.root, "cyrus.conf"),
               "-p", os.path.join(self.root, "run", "master.pid")]
        try:
            self._supervisor = subprocess.Popen(
                [PYTHON, "-I", "-S", SUPERVISE, "--grace", "5", "--", *cmd],
                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, cwd=self.root,
                start_new_session=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                             "TZ": "UTC", "LANG": "C"})
        finally:
            out.close()

    def _wait_ready(self):
        """Both ports greet with this instance's name (a port another server holds greets
        otherwise or not at all)."""
        deadline = time.monotonic() + self.start_timeout
        pending = {self.imap_port: False, self.imaps_port: True}
        while pending:
            if self._supervisor.poll() is not None:
                self._startup_failed(f"master exited with status {self._supervisor.returncode}")
            for port, tls in list(pending.items()):
                greeting = self._greeting(port, tls)
                if greeting is not None and self.instance.encode() in greeting:
                    del pending[port]
                elif greeting is not None:
                    raise _PortInUse(f"port {port} answers for another server: {greeting!r}")
            if time.monotonic() > deadline:
                self._startup_failed(f"ports {sorted(pending)} not ready after "
                                     f"{self.start_timeout} s")
            if pending:
                time.sleep(0.01)

    def _greeting(self, port, tls):
        """The server's first line on `port`, or None while nothing listens there."""
        try:
            sock = socket.create_connection((self.host, port), timeout=5)
        except OSError:
            return None
        try:
            if tls:
                sock = self.ssl_context().wrap_socket(sock, server_hostname=self.host)
            return sock.makefile("rb").readline()
        except (OSError, ssl.SSLError):
            return None
        finally:
            sock.close()

    def _startup_failed(self, why):
        raise HarnessError(f"cyrus failed to start: {why}\n{self.describe()}\n"
                           f"{self.log_tail(40)}")

    def _stop_processes(self):
        proc, self._supervisor = self._supervisor, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdin:
                proc.stdin.close()
        # Only reachable if the supervisor was killed from outside: clean up after it.
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

    @contextlib.contextmanager
    def imap(self, user, tls="implicit"):
        """A logged-in imaplib connection as `user` (closed on exit), authenticated with
        AUTHENTICATE PLAIN (imaplib's LOGIN takes ASCII only)."""
        conn = self.imap_connect(tls)
        try:
            conn.authenticate("PLAIN", lambda _: f"\0{user}\0{self.users[user]}".encode())
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    # ----- mailbox helpers (IMAP over TLS, verified against the CA), as MailServer's --------

    def deliver(self, user, raw, folder="INBOX", flags=(), internaldate=None):
        """APPEND one message; returns its UID. imaplib turns bare LF line ends into CRLF."""
        with self.imap(user) as conn:
            data = imapwire.check(conn.append(
                imapwire.quote(folder), imapwire.flag_list(flags) if flags else None,
                internaldate if internaldate is not None else time.time(), raw), "APPEND")
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

    def messages(self, user, folder="INBOX", body=True):
        """Every message of the folder in UID order, read without setting \\Seen."""
        items = "(UID FLAGS INTERNALDATE RFC822.SIZE" + (" BODY.PEEK[])" if body else ")")
        with self.imap(user) as conn:
            imapwire.check(conn.select(imapwire.quote(folder), readonly=True),
                           f"SELECT {folder}")
            data = imapwire.check(conn.uid("FETCH", "1:*", items), "FETCH")
        msgs = [imapwire.parse_message(meta, lit) for meta, lit in imapwire.split_fetch(data)]
        return sorted(msgs, key=lambda m: m.uid)

    def message(self, user, folder, uid):
        for m in self.messages(user, folder):
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

    def status(self, user, folder="INBOX"):
        """{MESSAGES, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ, UNSEEN} over IMAP STATUS."""
        fields = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ", "UNSEEN")
        with self.imap(user) as conn:
            data = imapwire.check(conn.status(imapwire.quote(folder),
                                              "(" + " ".join(fields) + ")"), "STATUS")
        line = b"".join(d if isinstance(d, bytes) else d[0] for d in data if d)
        items = dict(re.findall(rb"([A-Z]+) (\d+)", line.rsplit(b"(", 1)[1]))
        return {f: int(items[f.encode()]) for f in fields}

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
