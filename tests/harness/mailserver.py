"""A private mail server for integration tests: Dovecot 2.3 (IMAP, POP3, LMTP) and Postfix
(SMTP submission with AUTH through Dovecot, delivering into Dovecot over LMTP), all on
127.0.0.1 under one temporary directory, with their own CA.

    with MailServer() as srv:           # or srv = MailServer().start() ... srv.close()
        srv.deliver("alice", raw)
        msgs = srv.messages("alice", "INBOX")

Must run as root (Postfix's master and Dovecot's privilege separation need it); the mail
itself belongs to the unprivileged `mail` user. Every process runs under a supervisor
(supervise.py) that kills and reaps the whole tree when stop() is called, when the test
process dies in any way, or when the server fails: nothing outlives the instance.
"""

import base64
import collections
import concurrent.futures
import contextlib
import datetime
import itertools
import os
import poplib
import pwd
import re
import grp
import secrets
import smtplib
import subprocess
import time

from . import configs, procs
from .imapwire import Folder, Message
from .procs import processes_under, reap_stale_instances
from .errors import HarnessError
from .server import PortInUse, PrivateServer
from .tls import TestPKI

__all__ = ["MailServer", "HarnessError", "Message", "Folder", "processes_under",
           "reap_stale_instances"]

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
TMP_PREFIX = "mfh-"
SEED_THREADS = 8
REJECT_REPLY = "550 5.1.1 Recipient address rejected by the test harness"
DEFER_REPLY = "450 4.2.0 Recipient temporarily refused by the test harness"

# Maildir info letters for IMAP system flags (Dovecot's mapping).
MAILDIR_FLAGS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S",
                 "\\Deleted": "T"}


def _age(path):
    """Postfix waits (0.3 s at a time) until a table or main.cf was last changed more than
    a second ago, in case an editor is still writing it: date our files back."""
    then = time.time() - 60
    os.utime(path, (then, then))


def _seed_item(item):
    """seed() accepts raw bytes, (raw, flags), (raw, flags, internaldate) or an object with
    .raw and optional .flags / .internaldate (a corpus message)."""
    if isinstance(item, (bytes, bytearray)):
        return bytes(item), (), None
    if isinstance(item, tuple):
        raw, flags, date = item if len(item) == 3 else (item[0], item[1], None)
        return raw, (flags,) if isinstance(flags, str) else flags, date
    return item.raw, getattr(item, "flags", ()), getattr(item, "internaldate", None)


def _timestamp(date):
    if date is None:
        return None
    if isinstance(date, datetime.datetime):
        return date.timestamp()
    return float(date)


class MailServer(PrivateServer):
    """A private Dovecot + Postfix. See the module docstring, server.py and the attributes
    below.

    capabilities: "full" (Dovecot's own list), "gmail", "o365" or "imap4rev1".
    compress: offer COMPRESS=DEFLATE (imap_zlib) where the profile has it.
    users: {name: password}; default alice and bob with random passwords.
    base_dir: where the temporary directory goes (default: the system temp dir; it and
    its parents must be searchable by the `mail` and `dovecot` users).
    reuse_processes: IMAP and POP3 processes serve one connection after another, which
    costs far less CPU; not for tests of push (configs.PROCESS_REUSE says why).
    """

    tmp_prefix = TMP_PREFIX
    run_as = "mail"
    log_name = "dovecot"
    # Recipients the SMTP server always refuses: permanently (5xx) and temporarily (4xx).
    reject_address = "reject@example.test"
    defer_address = "defer@example.test"

    def __init__(self, capabilities="full", compress=True, users=None, base_dir=None,
                 start_timeout=15.0, reuse_processes=False):
        if capabilities not in configs.CAPABILITY_PROFILES:
            raise ValueError(f"unknown capability profile {capabilities!r}")
        if os.geteuid() != 0:
            raise HarnessError("the mail server harness must run as root (Postfix, Dovecot)")
        super().__init__(users, base_dir, start_timeout)
        self.capabilities = capabilities
        self.compress = compress
        self.reuse_processes = reuse_processes
        self.oauth_tokens = {name: f"oauth-{name}-{secrets.token_urlsafe(16)}"
                             for name in self.users}
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = None
        self.lmtp_port = self.smtp_port = self.smtps_port = None
        self._seed_seq = 0

    # ----- set-up -----------------------------------------------------------------------

    def _prepare(self):
        self._make_root()  # mail and dovecot must reach their files below
        mail = pwd.getpwnam("mail")
        self.mail_uid, self.mail_gid = mail.pw_uid, mail.pw_gid
        for d in ("log", "state", "run", "mail"):
            os.makedirs(os.path.join(self.root, d), mode=0o755)
        pki = TestPKI(os.path.join(self.root, "tls"))
        self.ca_file, self.fingerprint = pki.ca_file, pki.fingerprint
        self._write_users()
        self._prepare_postfix_dirs()
        self._assign_ports()

    def _write_users(self):
        for name in self.users:
            home = os.path.join(self.root, "mail", name)
            os.makedirs(home, mode=0o700)
            os.chown(home, self.mail_uid, self.mail_gid)
            # INBOX exists from the start: Dovecot 2.3 can deadlock (and the LMTP process
            # panics) when a delivery and an IMAP session both create it at once.
            for sub in ("cur", "new", "tmp"):
                self._makedirs_as_mail(os.path.join(home, "Maildir", "INBOX", sub))
        for fname, secret in (("passwd", self.users), ("tokens", self.oauth_tokens)):
            lines = []
            for name, value in secret.items():
                if ":" in value or "\n" in value:
                    raise ValueError(f"{name}: passwords and tokens must not hold ':' or newlines")
                lines.append(f"{name}:{{PLAIN}}{value}::::::\n")
            path = os.path.join(self.root, fname)
            with open(path, "w") as f:
                f.writelines(lines)
            os.chmod(path, 0o644)

    def _prepare_postfix_dirs(self):
        pf = pwd.getpwnam("postfix")
        postdrop = grp.getgrnam("postdrop").gr_gid
        conf = os.path.join(self.root, "postfix")
        queue = os.path.join(conf, "queue")
        os.makedirs(queue, mode=0o755)
        os.makedirs(os.path.join(conf, "data"), mode=0o700)
        os.chown(os.path.join(conf, "data"), pf.pw_uid, pf.pw_gid)
        for d in ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
                  "incoming", "private", "saved", "trace"):
            os.mkdir(os.path.join(queue, d), 0o700)
            os.chown(os.path.join(queue, d), pf.pw_uid, -1)
        for d, mode in (("maildrop", 0o730), ("public", 0o710)):
            os.mkdir(os.path.join(queue, d), mode)
            os.chown(os.path.join(queue, d), pf.pw_uid, postdrop)
            os.chmod(os.path.join(queue, d), mode)
        os.mkdir(os.path.join(queue, "pid"), 0o755)
        self._rejections = {self.reject_address: REJECT_REPLY, self.defer_address: DEFER_REPLY}
        self._write_rejections()

    def _assign_ports(self):
        (self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port, self.lmtp_port,
         self.smtp_port, self.smtps_port) = procs.pick_ports(7)

    def _values(self):
        return {
            "ROOT": self.root, "INSTANCE": self.instance, "DOMAIN": self.domain,
            "MAIL_UID": self.mail_uid, "MAIL_GID": self.mail_gid,
            "IMAP_PORT": self.imap_port, "IMAPS_PORT": self.imaps_port,
            "POP3_PORT": self.pop3_port, "POP3S_PORT": self.pop3s_port,
            "LMTP_PORT": self.lmtp_port, "SMTP_PORT": self.smtp_port,
            "SMTPS_PORT": self.smtps_port,
        }

    def _write_configs(self):
        values = self._values()
        with open(self.dovecot_conf, "w") as f:
            f.write(configs.dovecot_conf(values, self.capabilities, self.compress,
                                         self.reuse_processes))
        for name, template in (("main.cf", configs.POSTFIX_MAIN_CF),
                               ("master.cf", configs.POSTFIX_MASTER_CF)):
            path = os.path.join(self.postfix_dir, name)
            with open(path, "w") as f:
                f.write(configs.render(template, values))
            _age(path)

    # ----- paths --------------------------------------------------------------------------

    @property
    def dovecot_conf(self):
        return os.path.join(self.root, "dovecot.conf")

    @property
    def postfix_dir(self):
        return os.path.join(self.root, "postfix")

    @property
    def logs(self):
        """{name: path} of the server logs (Dovecot's, Postfix's and their raw output)."""
        log = os.path.join(self.root, "log")
        return {"dovecot": os.path.join(log, "dovecot.log"),
                "dovecot-output": os.path.join(log, "dovecot.out"),
                "postfix": os.path.join(log, "postfix.log"),
                "postfix-output": os.path.join(log, "postfix.out")}

    def _describe_head(self):
        return [f"mail server {self.root} (profile {self.capabilities}, "
                f"compress {'on' if self.compress else 'off'})",
                f"  imap {self.imap_port} imaps {self.imaps_port} pop3 {self.pop3_port} "
                f"pop3s {self.pop3s_port} lmtp {self.lmtp_port} smtp {self.smtp_port} "
                f"smtps {self.smtps_port} on {self.host}"]

    # ----- processes ----------------------------------------------------------------------

    def _log_sizes(self):
        sizes = {}
        for name, path in self.logs.items():
            try:
                sizes[name] = os.path.getsize(path)
            except FileNotFoundError:
                sizes[name] = 0
        return sizes

    def _new_log_text(self):
        """What the logs got since the last launch."""
        out = []
        for name, path in self.logs.items():
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
                f.seek(self._launch_log_sizes.get(name, 0))
                text = f.read().decode(errors="replace")
                if text.strip():
                    out.append(f"--- {name} ---\n{text.rstrip()}")
        return "\n".join(out)

    def _launch(self):
        self._launch_log_sizes = self._log_sizes()
        # Dovecot's master alone takes a second or more to stop (it waits for its
        # children, then SIGQUITs the rest and sleeps 1 s); every Dovecot process shuts
        # down cleanly on SIGTERM, so the supervisor sends it to all of them at once.
        # A master.pid left by a SIGKILL could name a reused pid: remove it first.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, "run", "dovecot", "master.pid"))
        self._supervise("dovecot", [DOVECOT, "-F", "-c", self.dovecot_conf], grace=5,
                        term_all=True)
        self._supervise("postfix", [POSTFIX_MASTER, "-c", self.postfix_dir], grace=5)

    def _wait_ready(self):
        """Every port listens, the SASL socket exists and both masters logged their
        start (which they do only after binding all listeners: a port that listens for
        somebody else does not count)."""
        ports = {self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port,
                 self.lmtp_port, self.smtp_port, self.smtps_port}
        auth_socket = os.path.join(self.root, "run", "auth-postfix")
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._check_supervisors()
            if ports <= procs.listening_ports() and os.path.exists(auth_socket):
                logs = self._new_log_text()
                if "starting up" in logs and "daemon started" in logs:
                    return
            if time.monotonic() > deadline:
                self._startup_failed(f"not ready after {self.start_timeout} s")
            time.sleep(0.005)

    def _startup_failed(self, why):
        logs = self._new_log_text()
        error = PortInUse if "Address already in use" in logs else HarnessError
        raise error(f"mail server failed to start: {why}\n{self.describe()}\n{logs}")

    # ----- server administration ---------------------------------------------------------

    def doveadm(self, *args, check=True, input=None):
        """Run `doveadm -c OUR.conf ARGS...`; returns the CompletedProcess (text)."""
        res = subprocess.run([DOVEADM, "-c", self.dovecot_conf, *args], input=input,
                             capture_output=True, text=not isinstance(input, bytes),
                             timeout=120)
        if check and res.returncode != 0:
            raise HarnessError(f"doveadm {' '.join(args)} failed ({res.returncode}): "
                               f"{res.stderr}")
        return res

    # ----- clients (imap(), imap_connect() and ssl_context() are PrivateServer's) -----------

    def pop3_connect(self, tls="implicit", timeout=30):
        if tls == "implicit":
            return poplib.POP3_SSL(self.host, self.pop3s_port, context=self.ssl_context(),
                                   timeout=timeout)
        conn = poplib.POP3(self.host, self.pop3_port, timeout=timeout)
        if tls == "starttls":
            conn.stls(self.ssl_context())
        elif tls != "none":
            raise ValueError(tls)
        return conn

    def smtp_connect(self, tls="starttls", timeout=30):
        """An SMTP submission connection after EHLO (and STARTTLS); not authenticated."""
        if tls == "implicit":
            conn = smtplib.SMTP_SSL(self.host, self.smtps_port, context=self.ssl_context(),
                                    timeout=timeout)
        else:
            conn = smtplib.SMTP(self.host, self.smtp_port, timeout=timeout)
            if tls == "starttls":
                conn.starttls(context=self.ssl_context())
            elif tls != "none":
                raise ValueError(tls)
        conn.ehlo("client.example.test")
        return conn

    @contextlib.contextmanager
    def smtp(self, user, tls="starttls"):
        """A logged-in smtplib connection as `user` (closed on exit; AUTH PLAIN sent by
        hand, as smtplib's login() takes ASCII passwords only)."""
        conn = self.smtp_connect(tls)
        try:
            code, reply = conn.docmd("AUTH", "PLAIN " + base64.b64encode(
                self._plain(user)).decode("ascii"))
            if code != 235:
                raise smtplib.SMTPAuthenticationError(code, reply)
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.quit()

    def lmtp_send(self, recipients, raw, sender="sender@example.test"):
        """Deliver over LMTP (as an MTA would); returns {recipient: (code, text)} of the
        refused ones. recipients: user names or addresses."""
        if isinstance(recipients, str):
            recipients = [recipients]
        rcpts = [r if "@" in r else self.address(r) for r in recipients]
        conn = smtplib.LMTP(self.host, self.lmtp_port)
        try:
            return conn.sendmail(sender, rcpts, raw)
        except smtplib.SMTPRecipientsRefused as e:
            return e.recipients
        finally:
            with contextlib.suppress(Exception):
                conn.quit()

    # ----- SMTP rejections ----------------------------------------------------------------

    def _write_rejections(self):
        path = os.path.join(self.postfix_dir, "recipient_access")
        with open(path + ".tmp", "w") as f:
            for addr, reply in self._rejections.items():
                f.write(f"{addr} {reply}\n")
        _age(path + ".tmp")
        os.replace(path + ".tmp", path)

    def smtp_reject(self, address, reply=REJECT_REPLY):
        """Make SMTP refuse RCPT TO:<address> with `reply` ("5xx ..." permanent, "4xx ..."
        temporary) from the next SMTP session on."""
        if not re.match(r"[45]\d\d ", reply):
            raise ValueError("reply must start with a 4xx or 5xx code")
        self._rejections[address] = reply
        self._write_rejections()

    def smtp_defer(self, address, reply=DEFER_REPLY):
        self.smtp_reject(address, reply)

    def smtp_accept(self, address):
        """Undo smtp_reject/smtp_defer for `address`."""
        self._rejections.pop(address, None)
        self._write_rejections()

    # ----- mailbox helpers: PrivateServer's, with status() from doveadm --------------------

    def status(self, user, folder="INBOX"):
        """{MESSAGES, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ, UNSEEN} from doveadm (works under
        every capability profile)."""
        fields = "messages uidnext uidvalidity highestmodseq unseen"
        out = self.doveadm("-f", "tab", "mailbox", "status", "-u", user, fields, folder).stdout
        header, values = out.rstrip("\n").split("\n")[:2]
        row = dict(zip(header.split("\t"), values.split("\t")))
        return {k.upper(): int(row[k]) for k in fields.split()}

    # ----- bulk seeding ---------------------------------------------------------------------

    def folder_path(self, user, folder):
        """The Maildir directory of a folder in the server's storage (created if missing)."""
        res = self.doveadm("mailbox", "create", "-u", user, folder, check=False)
        if res.returncode not in (0, 65) and "exists" not in res.stderr:
            raise HarnessError(f"mailbox create {folder}: {res.stderr}")
        return self.doveadm("mailbox", "path", "-u", user, folder).stdout.strip()

    def seed(self, user, folder, messages):
        """Write messages straight into the folder's Maildir (as the `mail` user), then let
        Dovecot index them. Items: raw bytes, (raw, flags), (raw, flags, internaldate) or
        objects with .raw/.flags/.internaldate. Flags: IMAP system flags and keywords.
        Files are stored byte for byte (Dovecot serves LF-only files with CRLF).
        Returns the new UIDs, in the order given."""
        path = self.folder_path(user, folder)
        for sub in ("cur", "new", "tmp"):
            self._makedirs_as_mail(os.path.join(path, sub))
        self._seed_seq += 1
        keywords = _Keywords(path, self.mail_uid, self.mail_gid)
        prefix = f"{int(time.time())}.M%07dP{os.getpid()}Q{self._seed_seq}.mfharness"
        names = []
        # File creation dominates; it waits on the file system, so threads do help.
        with concurrent.futures.ThreadPoolExecutor(SEED_THREADS) as pool:
            pending = collections.deque()
            items = enumerate(messages)
            while True:
                chunk = []
                for i, item in itertools.islice(items, 256):
                    raw, flags, date = _seed_item(item)
                    # Dovecot numbers new files in the order of the time stamp in their name.
                    uniq = prefix % i + f",S={len(raw)}"
                    info = "".join(sorted(MAILDIR_FLAGS[f] for f in flags if f in MAILDIR_FLAGS))
                    info += "".join(sorted(keywords.letter(f) for f in flags
                                           if f not in MAILDIR_FLAGS))
                    chunk.append((uniq, info, raw, _timestamp(date)))
                    names.append(uniq)
                if not chunk:
                    break
                pending.append(pool.submit(self._seed_write, path, chunk))
                while len(pending) > 2 * SEED_THREADS:
                    pending.popleft().result()
            for fut in pending:
                fut.result()
        keywords.save()
        self.doveadm("force-resync", "-u", user, folder)
        uids = _read_uidlist(os.path.join(path, "dovecot-uidlist"))
        return [uids[n] for n in names]

    def _makedirs_as_mail(self, path):
        """Create path and its missing parents (a user's Maildir, INBOX before its first
        use) as Dovecot would: mode 0700, owned by the mail user."""
        if os.path.isdir(path):
            return
        self._makedirs_as_mail(os.path.dirname(path))
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
            os.chown(path, self.mail_uid, self.mail_gid)

    def _seed_write(self, path, chunk):
        for uniq, info, raw, ts in chunk:
            tmp = os.path.join(path, "tmp", uniq)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, raw)
                os.fchown(fd, self.mail_uid, self.mail_gid)
            finally:
                os.close(fd)
            if ts is not None:
                os.utime(tmp, (ts, ts))
            os.rename(tmp, os.path.join(path, "cur", f"{uniq}:2,{info}"))


class _Keywords:
    """The folder's dovecot-keywords file: keyword <-> Maildir letter (a..z)."""

    def __init__(self, path, uid, gid):
        self.file = os.path.join(path, "dovecot-keywords")
        self.uid, self.gid = uid, gid
        self.names = {}
        self.changed = False
        with contextlib.suppress(FileNotFoundError), open(self.file) as f:
            for line in f:
                idx, _, name = line.rstrip("\n").partition(" ")
                if idx.isdigit():
                    self.names[name] = int(idx)

    def letter(self, keyword):
        if keyword not in self.names:
            if len(self.names) >= 26:
                raise HarnessError("a Maildir folder holds at most 26 keywords")
            self.names[keyword] = max(self.names.values(), default=-1) + 1
            self.changed = True
        return chr(ord("a") + self.names[keyword])

    def save(self):
        if not self.changed:
            return
        tmp = self.file + ".mfharness"
        with open(tmp, "w") as f:
            for name, idx in sorted(self.names.items(), key=lambda kv: kv[1]):
                f.write(f"{idx} {name}\n")
        os.chown(tmp, self.uid, self.gid)
        os.replace(tmp, self.file)


def _read_uidlist(path):
    """dovecot-uidlist -> {file base name (before ':2,'): uid}."""
    uids = {}
    with open(path) as f:
        next(f)
        for line in f:
            head, _, name = line.rstrip("\n").partition(":")
            uid = head.split()[0]
            uids[name.split(":2,")[0]] = int(uid)
    return uids
