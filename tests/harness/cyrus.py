"""A private Cyrus IMAP 3.6 server, the second IMAP implementation the sync tests run
against beside Dovecot (MailServer): IMAP with STARTTLS and IMAPS on 127.0.0.1, its own CA,
users with passwords in a private sasldb, all under one temporary directory.

    with CyrusServer() as srv:          # or srv = CyrusServer().start() ... srv.close()
        srv.deliver("alice", raw)
        msgs = srv.messages("alice", "INBOX")

Its IMAP helpers (deliver, messages, set_flags, expunge, create_folder, list_folders,
status, ...) are MailServer's (both are server.py's PrivateServer), so a test can take
either server. There is no POP3, LMTP or SMTP here.

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

import os
import pwd
import re
import socket
import ssl
import subprocess
import time

from . import imapwire, procs
from .errors import HarnessError
from .server import PortInUse, PrivateServer
from .tls import TestPKI

__all__ = ["CyrusServer", "CyrusUnavailable"]

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FETCH_CYRUS = os.path.join(REPO_DIR, "scripts", "fetch-cyrus")
CYRUS_BIN = "/usr/lib/cyrus/bin"        # cyrus-common: master, ctl_cyrusdb, ...
MASTER = os.path.join(CYRUS_BIN, "master")
SASLPASSWD = "/usr/sbin/saslpasswd2"    # sasl2-bin
CYRUS_USER = "cyrus"                    # created by cyrus-common; master runs as it
TMP_PREFIX = "mfc-"
# namespace -> imapd.conf's (altnamespace, unixhierarchysep).
NAMESPACES = {"alt": ("yes", "yes"), "traditional": ("no", "no")}


class CyrusUnavailable(HarnessError):
    """Cyrus cannot run here for a reason outside the project (a package missing and not
    installable, no archive to fetch imapd from, not root): the message says which."""


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


class CyrusServer(PrivateServer):
    """A private Cyrus imapd. See the module docstring, server.py and the attributes below.

    users: {name: password}; default alice and bob with random passwords. Names have no
    domain part: Cyrus refuses `alice@example.test` without virtual domains.
    namespace: "alt", upstream's default: folders beside INBOX, "/" as separator
    (`Lists/rust`); or "traditional", what Debian's own imapd.conf sets: every folder below
    INBOX, "." as separator (`INBOX.Lists.rust`), none can be created beside INBOX.
    base_dir: where the temporary directory goes (default: the system temp dir; it and its
    parents must be searchable by the `cyrus` user).
    start() returns once both ports greet with this instance's name; it raises
    CyrusUnavailable when Cyrus cannot run here at all.
    """

    name = "cyrus"
    tmp_prefix = TMP_PREFIX
    run_as = CYRUS_USER
    log_name = "master-output"
    log_width = 300     # telemetry holds whole messages

    def __init__(self, users=None, namespace="alt", base_dir=None, start_timeout=15.0):
        if namespace not in NAMESPACES:
            raise ValueError(f"unknown namespace {namespace!r}")
        super().__init__(users, base_dir, start_timeout)
        self.namespace = namespace
        self.imapd = None
        self.imap_port = self.imaps_port = None

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
        self._check_platform()
        self.imapd = os.path.join(imapd_tree(), "usr/lib/cyrus/bin/imapd")
        self._make_root()  # the cyrus user must reach its files below
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

    def _describe_head(self):
        return [f"cyrus server {self.root} ({self.imapd}, namespace {self.namespace})",
                f"  imap {self.imap_port} imaps {self.imaps_port} on {self.host}"]

    # ----- processes ----------------------------------------------------------------------

    def _launch(self):
        # -D: master keeps stdout and stderr (our log file) instead of closing them.
        self._supervise("master", [MASTER, "-D", "-C", os.path.join(self.root, "imapd.conf"),
                                   "-M", os.path.join(self.root, "cyrus.conf"),
                                   "-p", os.path.join(self.root, "run", "master.pid")],
                        grace=5)

    def _wait_ready(self):
        """Both ports greet with this instance's name (a port another server holds greets
        otherwise or not at all)."""
        deadline = time.monotonic() + self.start_timeout
        pending = {self.imap_port: False, self.imaps_port: True}
        while pending:
            self._check_supervisors()
            for port, tls in list(pending.items()):
                greeting = self._greeting(port, tls)
                if greeting is not None and self.instance.encode() in greeting:
                    del pending[port]
                elif greeting is not None:
                    raise PortInUse(f"port {port} answers for another server: {greeting!r}")
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

    # ----- mailbox helpers: PrivateServer's, with status() over IMAP ------------------------

    def _append_date(self, internaldate):
        """Without a date of the caller's, APPEND names the time of the call."""
        return internaldate if internaldate is not None else time.time()

    def status(self, user, folder="INBOX"):
        """{MESSAGES, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ, UNSEEN} over IMAP STATUS."""
        fields = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ", "UNSEEN")
        with self.imap(user) as conn:
            data = imapwire.check(conn.status(imapwire.quote(folder),
                                              "(" + " ".join(fields) + ")"), "STATUS")
        line = b"".join(d if isinstance(d, bytes) else d[0] for d in data if d)
        items = dict(re.findall(rb"([A-Z]+) (\d+)", line.rsplit(b"(", 1)[1]))
        return {f: int(items[f.encode()]) for f in fields}
