"""A Maildir made by mailferry in a real reader: neomutt, driven in tmux.

neomutt opens the folder mailferryd --once fetched, the test flags one message (F), reads
another (Enter, q), deletes a third (d), saves a fourth to another folder (s), syncs ($) and
quits; the next --once carries each change to the server, which is then read back over
IMAP. Keys go in with `tmux send-keys`; after each one the test polls `tmux capture-pane`
until the screen shows the expected result, with a deadline, so an unexpected prompt fails
the test with the screen in the report instead of hanging it.

Needs neomutt and tmux (scripts/deps.list). MF_BUILD_DIR chooses the build.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

pytestmark = pytest.mark.mailserver(compress=False)

ACCOUNT = "nm"
WAIT = 15.0  # seconds for neomutt to show what a key should have done
SUBJECTS = ("Alpha report", "Bravo notes", "Charlie plan", "Delta minutes", "Echo lunch")

MUTTRC = """\
set mbox_type = Maildir
set folder = "{folder}"
set spoolfile = "+INBOX"
set header_cache = ""
set message_cachedir = ""
set sort = date
set mark_old = no
set delete = yes
set quit = yes
set move = no
set wait_key = no
set sleep_time = 0
set beep = no
set confirmappend = no
set confirmcreate = no
unset record
set index_format = "%4C %Z %s"
"""


def message(i, subject):
    """A plain message; the second one has CRLF line ends, as some servers store them."""
    nl = "\r\n" if i == 1 else "\n"
    lines = [f"From: Sender {i} <sender{i}@example.test>", "To: alice@example.test",
             f"Subject: {subject}", f"Date: Mon, 0{i + 1} Sep 2024 10:00:00 +0000",
             f"Message-ID: <neomutt.{i}@example.test>", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", "",
             f"This is message {i} about {subject.lower()}.", "Grüße, the test"]
    return (nl.join(lines) + nl).encode()


class Neomutt:
    """neomutt in a private tmux server (its socket in the test's directory)."""

    def __init__(self, tmp_path, env):
        self.socket = tmp_path / "tmux.sock"
        self.env = env
        self.started = False

    def tmux(self, *args, check=True):
        res = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                             text=True, timeout=10)
        if check and res.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {res.stderr}\n{self.report()}")
        return res.stdout

    def start(self, muttrc, folder):
        # The shell keeps the pane open after neomutt ends, so that its last screen and
        # its exit status can still be read.
        cmd = (f"neomutt -n -F {muttrc} -f {folder}; "
               f"echo \"[neomutt exited $?]\"; sleep 600")
        env = [f"{k}={v}" for k, v in self.env.items()]
        self.tmux("new-session", "-d", "-s", "nm", "-x", "150", "-y", "40", "env", *env,
                  "sh", "-c", cmd)
        self.started = True

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "nm", check=False)

    def report(self):
        return "--- neomutt's screen ---\n" + (self.screen() if self.started else "(not started)")

    def wait_for(self, pattern, what, timeout=WAIT):
        """Poll the screen until pattern (a regex) matches; fail with the screen if not."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            m = re.search(pattern, text, re.M)
            if m:
                return m
            if time.monotonic() > deadline:
                pytest.fail(f"neomutt did not show {what} within {timeout} s "
                            f"(looked for /{pattern}/)\n{self.report()}")
            time.sleep(0.05)

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "nm", *keys)

    def literal(self, text):
        self.tmux("send-keys", "-t", "nm", "-l", text)

    def go_to(self, subject):
        """Select the message with this subject (a search from the index)."""
        self.keys("/")
        self.wait_for(r"^Search for:", "the search prompt")
        self.literal(subject)
        self.keys("Enter")
        self.wait_for(rf"^\s*\d+ .*{re.escape(subject)}", f"{subject!r} in the index")

    def index_line(self, subject):
        m = self.wait_for(rf"^\s*\d+ (.*?){re.escape(subject)}", f"{subject!r} in the index")
        return m.group(1)

    def close(self):
        if self.started:
            self.tmux("kill-server", check=False)
            self.started = False


@pytest.fixture
def neomutt(tmp_path, mf_env):
    for tool in ("neomutt", "tmux"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (scripts/deps.list; scripts/install-deps)")
    env = {"HOME": str(mf_env.home), "LANG": "C.UTF-8", "TZ": "UTC",
           "PATH": "/usr/bin:/bin", "TERM": "screen"}
    nm = Neomutt(tmp_path, env)
    yield nm
    nm.close()


def local_files(folder):
    """{subject: (subdir, file name)} of a Maildir folder."""
    out = {}
    for sub in ("new", "cur"):
        for name in os.listdir(folder / sub):
            raw = (folder / sub / name).read_bytes()
            subject = re.search(rb"^Subject: (.*?)\r?$", raw, re.M).group(1).decode()
            assert subject not in out, f"{subject!r} twice in {folder}"
            out[subject] = (sub, name)
    return out


def server_messages(srv, folder):
    """{subject: Message} of a server folder."""
    out = {}
    for m in srv.messages("alice", folder):
        subject = re.search(rb"^Subject: (.*?)\r?$", m.raw, re.M).group(1).decode()
        assert subject not in out, f"{subject!r} twice on the server in {folder}"
        out[subject] = m
    return out


def test_neomutt_changes_sync_up(mf_env, mailserver, neomutt, tmp_path):
    raws = [message(i, s) for i, s in enumerate(SUBJECTS)]
    mailserver.seed("alice", "INBOX", raws)
    mailserver.folder_path("alice", "Archive")
    mf_env.write_config(accounts=[mf_env.account(ACCOUNT, imap={"folders": ["INBOX",
                                                                            "Archive"]})])
    rc, out, err = mf_env.mailferryd("--once")
    assert rc == 0, err
    root = mf_env.maildir_root / ACCOUNT
    before = local_files(root / "INBOX")
    assert sorted(before) == sorted(SUBJECTS)
    assert all(sub == "new" for sub, _ in before.values()), before

    muttrc = tmp_path / "muttrc"
    muttrc.write_text(MUTTRC.format(folder=root))
    neomutt.start(muttrc, root / "INBOX")
    neomutt.wait_for(r"Msgs:5\b", "the folder with its 5 messages")
    for s in SUBJECTS:
        assert "N" in neomutt.index_line(s), f"{s} should show as new\n{neomutt.report()}"

    neomutt.go_to("Bravo notes")
    neomutt.keys("F")
    neomutt.wait_for(r"^\s*\d+ \S*\s*!\s*Bravo notes", "Bravo flagged (!)")

    neomutt.go_to("Alpha report")
    neomutt.keys("Enter")
    neomutt.wait_for(r"^Subject: Alpha report", "Alpha in the pager")
    neomutt.keys("q")
    neomutt.wait_for(r"^\s*\d+\s+Alpha report", "Alpha read (no N) back in the index")

    neomutt.go_to("Charlie plan")
    neomutt.keys("d")
    neomutt.wait_for(r"^\s*\d+ \S*D\S*\s+Charlie plan", "Charlie marked deleted (D)")

    neomutt.go_to("Delta minutes")
    neomutt.keys("s")
    neomutt.wait_for(r"^Save to mailbox", "the save prompt")
    neomutt.literal("=Archive")
    neomutt.keys("Enter")
    neomutt.wait_for(r"^\s*\d+ \S*D\S*\s+Delta minutes", "Delta saved (marked deleted)")

    neomutt.keys("$")
    neomutt.wait_for(r"Msgs:3\b", "the folder synced (3 messages left)")
    neomutt.keys("q")
    neomutt.wait_for(r"^\[neomutt exited 0\]", "neomutt's exit")

    # What neomutt left: Bravo F (still unread: new/), Alpha S in cur/, Charlie gone,
    # Delta moved to Archive (a rewritten copy under a new name), Echo untouched.
    inbox = local_files(root / "INBOX")
    assert sorted(inbox) == ["Alpha report", "Bravo notes", "Echo lunch"], inbox
    assert inbox["Alpha report"][0] == "cur" and inbox["Alpha report"][1].endswith(":2,S")
    assert inbox["Bravo notes"][1].endswith(":2,F"), inbox
    assert list(local_files(root / "Archive")) == ["Delta minutes"]

    rc, out, err = mf_env.mailferryd("--once")
    assert rc == 0, err
    server = server_messages(mailserver, "INBOX")
    assert sorted(server) == ["Alpha report", "Bravo notes", "Echo lunch"], \
        f"{sorted(server)}\n{out}{err}"
    assert server["Alpha report"].flags == {"\\Seen"}
    assert server["Bravo notes"].flags == {"\\Flagged"}
    assert server["Echo lunch"].flags == set()
    archive = server_messages(mailserver, "Archive")
    assert list(archive) == ["Delta minutes"], f"{sorted(archive)}\n{out}{err}"
    # A move, not an upload of neomutt's rewritten copy: the server keeps its bytes.
    assert archive["Delta minutes"].raw == raws[3].replace(b"\n", b"\r\n"), out
    assert re.search(r"\b1 moves\b", out), out

    # Nothing is left to do.
    rc, out, err = mf_env.mailferryd("--once")
    assert rc == 0 and re.search(r" 0 down, 0 up, 0 flags, 0 moves, 0 deletes", out), out + err
