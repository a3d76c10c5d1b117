"""The tools under test: mailferry and its peers, each with a config written for the
benchmark server, a Maildir of its own and the same durability (every message fsynced
before it counts as stored).

Every tool syncs the same layout: INBOX is ROOT/INBOX and a folder A/B is the nested
directory ROOT/A/B, named in UTF-8, so one reader (mailstate.read_maildir) serves all.
"""

import os
import re
import shutil
import subprocess

from harness import imaputf7

MAX_CONNECTIONS = 4  # mailferry's default; offlineimap is given the same


class Tool:
    """One tool's files under `home` (config, Maildir, sync state) and its command."""

    name = None
    notes = None  # what the verification has to allow for

    def __init__(self, home, srv, user):
        self.home = home
        self.srv = srv
        self.user = user
        self.config = os.path.join(home, self.config_name)
        os.makedirs(home, exist_ok=True)
        self.start(0)

    def start(self, run):
        """A fresh start for run `run`: a new Maildir and sync state, in a directory of
        their own. The old ones stay until the end: deleting a tree of many files just
        before the next pull makes ext4 slower at creating files for a while (its search
        for inodes not recently deleted), which would slow whichever tool came next."""
        base = os.path.join(self.home, f"run{run + 1}")
        self.maildir = os.path.join(base, "Mail")
        self.state = os.path.join(base, "state")
        for path in (self.maildir, self.state):
            shutil.rmtree(path, ignore_errors=True)
        os.makedirs(self.state)
        os.makedirs(self.maildir)  # mbsync wants its Path to exist; the same for all
        self.write_config()

    def write_config(self):
        with open(self.config, "w") as f:
            f.write(self.config_text())
        os.chmod(self.config, 0o600)

    def password(self):
        return self.srv.users[self.user]

    def command(self):
        raise NotImplementedError

    def folder_name(self, rel):
        """The server folder a directory ROOT/rel holds."""
        return rel

    def config_text(self):
        raise NotImplementedError

    @classmethod
    def version(cls):
        raise NotImplementedError


def _first_line(cmd):
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except OSError as e:
        return f"unavailable ({e.strerror})"
    out = (res.stdout or res.stderr).strip().splitlines()
    return out[0] if out else "unknown"


def _debian_version(package):
    res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                         text=True)
    return res.stdout.strip() if res.returncode == 0 else None


class Mailferry(Tool):
    name = "mailferry"
    config_name = "mailferry.conf"
    binary = None  # set by run

    def command(self):
        return [self.binary, "-c", self.config, "--once", "-q"]

    def config_text(self):
        srv = self.srv
        return f"""\
general: {{
  state_dir = "{self.state}";
  control_socket = "{self.home}/ctl.sock";
  log_level = "warn";
}};
accounts = (
  {{
    name = "bench";
    maildir = "{self.maildir}";
    layout = "verbatim";
    imap: {{
      host = "{srv.host}";
      port = {srv.imaps_port};
      tls = "implicit";
      ca_file = "{srv.ca_file}";
      user = "{self.user}";
      password = "{self.password()}";
      folders = [ "*" ];
      max_connections = {MAX_CONNECTIONS};
      delete = "expunge";
      create_folders = "both";
    }};
  }}
);
"""

    @classmethod
    def version(cls):
        return _first_line([cls.binary, "--version"])

    durability = ("always fsyncs each message file, then its directory, before the state "
                  "records it (no switch)")


class Mbsync(Tool):
    name = "mbsync"
    config_name = "mbsyncrc"

    def command(self):
        return ["mbsync", "-c", self.config, "-a", "-q"]

    def folder_name(self, rel):
        """mbsync 1.4 names local folders in IMAP's modified UTF-7 (Caf&AOk- for Café)."""
        return imaputf7.decode(rel)

    def config_text(self):
        srv = self.srv
        return f"""\
FSync yes

IMAPAccount bench
Host {srv.host}
Port {srv.imaps_port}
User {self.user}
Pass {self.password()}
SSLType IMAPS
CertificateFile {srv.ca_file}

IMAPStore bench-remote
Account bench

MaildirStore bench-local
Path {self.maildir}/
Inbox {self.maildir}/INBOX
SubFolders Verbatim

Channel bench
Far :bench-remote:
Near :bench-local:
Patterns *
Create Both
Expunge Both
SyncState {self.state}/
"""

    @classmethod
    def version(cls):
        line = _first_line(["mbsync", "--version"])
        deb = _debian_version("isync")
        return f"{line} (Debian isync {deb})" if deb else line

    durability = "FSync yes (its default)"
    notes = ("mbsync 1.4 names non-ASCII folders in modified UTF-7 on disk (Caf&AOk- for "
             "Café; UTF-8 names came with 1.5) and adds an X-TUID header to every message it "
             "stores; the verification decodes the names and ignores that header.")


class Offlineimap(Tool):
    name = "offlineimap"
    config_name = "offlineimaprc"

    def command(self):
        return ["offlineimap", "-c", self.config, "-o", "-u", "quiet"]

    def config_text(self):
        srv = self.srv
        return f"""\
[general]
accounts = bench
metadata = {self.state}
fsync = true
maxsyncaccounts = 1

[Account bench]
localrepository = bench-local
remoterepository = bench-remote
# status_backend = sqlite is the only backend of offlineimap3 8 (which refuses the key)
utf8foldernames = yes

[Repository bench-local]
type = Maildir
localfolders = {self.maildir}
sep = /

[Repository bench-remote]
type = IMAP
remotehost = {srv.host}
remoteport = {srv.imaps_port}
ssl = yes
sslcacertfile = {srv.ca_file}
remoteuser = {self.user}
remotepass = {self.password()}
maxconnections = {MAX_CONNECTIONS}
holdconnectionopen = no
expunge = yes
"""

    @classmethod
    def version(cls):
        line = _first_line(["offlineimap", "--version"])
        deb = _debian_version("offlineimap3")
        version = f"offlineimap3 {line}" if re.fullmatch(r"[\d.]+", line) else line
        return f"{version} (Debian offlineimap3 {deb})" if deb else version

    durability = "fsync = true"
    notes = ("offlineimap3 keeps its sync state in SQLite only (it refuses the old "
             "status_backend key).")


TOOLS = {cls.name: cls for cls in (Mailferry, Mbsync, Offlineimap)}


def redacted(text, password):
    return text.replace(password, "PASSWORD")
