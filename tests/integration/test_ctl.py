"""mailferryctl against a running mailferryd: every command with its exit status and its
effect on the server and the Maildir; the control socket's modes, its refusal of other
users (by the directory's mode, and by SO_PEERCRED when the modes are loosened), a stale
socket replaced, a live one not stolen, clients that send nothing, too much or half a
request. Waits are deadlines on something observable; the only fixed waits are the ones
that show something does NOT happen (a delivery while paused)."""

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest
from daemon_mail import files, message, reset_server
from waiting import wait_for

POLL = 3600  # no poll during a test: what arrives, arrived by push or by a command
MAGIC = b"mailferry/1\0"


def has_subject(folder, subject):
    return any(subject.encode() in p.read_bytes() for p in files(folder).values())


def socket_path(mf_env):
    return mf_env.runtime_dir / "mailferry" / "ctl.sock"


def start_daemon(mf_env, *args, accounts=None, general=None):
    """A daemon for alice after its first sync, with push running."""
    mf_env.write_config(accounts=accounts or [mf_env.account(imap={"poll_interval": POLL})],
                        general=general)
    d = mf_env.daemon(*args)
    wait_for("push to start", lambda: "event=push" in d.stderr() or d.proc.poll() is not None)
    assert d.proc.poll() is None, d.stderr()
    return d


@pytest.fixture
def running(mf_env, mailserver):
    """INBOX with two messages (one read), Lists/rust with one; the daemon after its first
    sync."""
    reset_server(mailserver)
    mailserver.deliver("alice", message(0), flags=["\\Seen"])
    mailserver.deliver("alice", message(1))
    mailserver.create_folder("alice", "Lists/rust")
    mailserver.deliver("alice", message(2), folder="Lists/rust")
    d = start_daemon(mf_env)
    wait_for("the first sync", lambda: len(files(mf_env.maildir())) == 2
             and len(files(mf_env.maildir(folder="Lists/rust"))) == 1)
    wait_for("the account to be idle", lambda: state(mf_env) == "idle")
    return d


def state(mf_env):
    rc, out, err = mf_env.mailferryctl("--json", "status")
    return json.loads(out)["accounts"][0]["state"] if rc == 0 else None


def ctl(mf_env, *args, timeout=60):
    return mf_env.mailferryctl(*args, timeout=timeout)


# ----- status -----------------------------------------------------------------------------

def test_status_table(mf_env, mailserver, running):
    rc, out, err = ctl(mf_env, "status")
    assert (rc, err) == (0, ""), err
    lines = out.splitlines()
    # a watcher event may start a pass at any time: "syncing" is fine as well
    assert re.fullmatch(r"test: (idle|syncing), push NOTIFY, \d+ connections?, last sync "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[0]), out
    assert "  capabilities: NOTIFY QRESYNC CONDSTORE MOVE UIDPLUS" in lines, out
    rows = {m.group(1): (int(m.group(2)), int(m.group(3)))
            for m in (re.fullmatch(r"  (\S+) +(\d+) +(\d+)  \d{4}-\S+ \S+", ln) for ln in lines)
            if m}
    assert rows["INBOX"] == (2, 1), out
    assert rows["Lists/rust"] == (1, 1), out
    rc, out2, err = ctl(mf_env, "status", "test")
    assert (rc, out2) == (0, out)
    rc, out, err = ctl(mf_env, "status", "nosuch")
    assert (rc, out) == (2, "")
    assert err == "mailferryctl: no account named nosuch\n"


def test_status_json_matches_the_server(mf_env, mailserver, running):
    rc, out, err = ctl(mf_env, "--json", "status")
    assert (rc, err) == (0, ""), err
    doc = json.loads(out)
    assert list(doc) == ["accounts"]
    [acct] = doc["accounts"]
    assert acct["name"] == "test"
    assert acct["protocol"] == "imap"
    assert acct["state"] in ("idle", "syncing")
    assert acct["push"] == "NOTIFY"
    assert acct["capabilities"] == ["NOTIFY", "QRESYNC", "CONDSTORE", "MOVE", "UIDPLUS"]
    assert acct["connections"] >= 1
    assert abs(acct["last_sync"] - time.time()) < 120
    assert acct["last_error"] == ""
    assert acct["backoff_ms"] == 0
    assert acct["outbox"] == {"queued": 0, "failed": 0, "next_try": 0}
    folders = {f["name"]: f for f in acct["folders"]}
    server = [f.name for f in mailserver.list_folders("alice") if "\\Noselect" not in f.attributes]
    assert set(folders) == set(server)
    for name, f in folders.items():
        st = mailserver.status("alice", name)
        assert (f["messages"], f["unread"]) == (st["MESSAGES"], st["UNSEEN"]), name
        assert f["last_result"] == "ok"
        assert abs(f["last_sync"] - time.time()) < 120
    assert folders["INBOX"]["messages"] == 2 and folders["INBOX"]["unread"] == 1
    # --json may also follow the command
    rc, out2, err = ctl(mf_env, "status", "--json")
    assert rc == 0 and json.loads(out2)["accounts"][0]["name"] == "test"
    rc, out, err = ctl(mf_env, "status", "--bogus")
    assert rc == 2 and "unexpected argument: --bogus" in err


# ----- sync -------------------------------------------------------------------------------

def test_sync_wait_returns_after_the_sync(mf_env, mailserver, running):
    # Dovecot holds NOTIFY news back ~0.5 s: when sync --wait returns at once after the
    # delivery, the message is there because of the sync it waited for.
    mailserver.deliver("alice", message(10, "waited for"))
    rc, out, err = ctl(mf_env, "sync", "test", "--wait")
    assert (rc, out, err) == (0, "", "")
    assert has_subject(mf_env.maildir(), "waited for 10")
    # a local change is on the server when it returns, too
    inbox = mf_env.maildir()
    tmp = inbox / "tmp" / "1.ctl.host"
    tmp.write_bytes(message(11, "uploaded"))
    os.rename(tmp, inbox / "new" / "1.ctl.host")
    rc, out, err = ctl(mf_env, "sync", "--wait")
    assert rc == 0, err
    assert any(b"uploaded 11" in m.raw for m in mailserver.messages("alice", "INBOX"))
    # without --wait it answers at once and the sync happens
    mailserver.deliver("alice", message(12, "later"))
    rc, out, err = ctl(mf_env, "sync")
    assert (rc, out, err) == (0, "sync started\n", "")
    wait_for("the message", lambda: has_subject(inbox, "later 12"))


def test_sync_usage_errors(mf_env, mailserver, running):
    rc, out, err = ctl(mf_env, "sync", "nosuch")
    assert (rc, out, err) == (2, "", "mailferryctl: no account named nosuch\n")
    rc, out, err = ctl(mf_env, "sync", "test", "Nowhere", "--wait")
    assert (rc, out) == (2, "")
    assert err.startswith("mailferryctl: account test has no folder Nowhere"), err
    rc, out, err = ctl(mf_env, "sync", "--frobnicate")
    assert (rc, out) == (2, "")
    assert "unexpected argument: --frobnicate" in err


@pytest.mark.parametrize("capability_profile", ["gmail"], indirect=True)
def test_sync_of_one_folder(mf_env, mailserver):
    """Without NOTIFY only INBOX is pushed (IDLE): a sync of one other folder brings that
    folder's news and no other's."""
    reset_server(mailserver)
    for name in ("One", "Two"):
        mailserver.create_folder("alice", name)
    start_daemon(mf_env)
    one, two = mf_env.maildir(folder="One"), mf_env.maildir(folder="Two")
    wait_for("the folders", lambda: (one / "cur").is_dir() and (two / "cur").is_dir())
    wait_for("the account to be idle", lambda: state(mf_env) == "idle")
    rc, out, err = ctl(mf_env, "--json", "status")
    assert json.loads(out)["accounts"][0]["capabilities"] == ["IDLE", "CONDSTORE", "MOVE", "UIDPLUS"]
    mailserver.deliver("alice", message(20, "for one"), folder="One")
    mailserver.deliver("alice", message(21, "for two"), folder="Two")
    rc, out, err = ctl(mf_env, "sync", "test", "One", "--wait")
    assert (rc, err) == (0, "")
    assert has_subject(one, "for one 20")
    assert not has_subject(two, "for two 21")
    rc, out, err = ctl(mf_env, "sync", "test", "--wait")
    assert (rc, err) == (0, "")
    assert has_subject(two, "for two 21")


def test_sync_wait_reports_a_failure(mf_env, mailserver, running):
    mailserver.stop()
    try:
        wait_for("the daemon to notice", lambda: "event=backoff" in running.stderr(), timeout=60)
        rc, out, err = ctl(mf_env, "sync", "test", "--wait")
        assert (rc, out) == (1, "")
        assert err.strip(), "a failed sync names its error"
        rc, out, err = ctl(mf_env, "--json", "status")
        acct = json.loads(out)["accounts"][0]
        assert acct["state"] == "backoff" and acct["backoff_ms"] > 0
        assert acct["last_error"]
    finally:
        mailserver.start()
    rc, out, err = ctl(mf_env, "sync", "test", "--wait")
    assert rc == 0, err


# ----- pause, resume ----------------------------------------------------------------------

def test_pause_stops_push_and_resume_brings_it(mf_env, mailserver, running):
    rc, out, err = ctl(mf_env, "pause")
    assert (rc, out, err) == (0, "test: paused\n", "")
    rc, out, err = ctl(mf_env, "--json", "status")
    assert json.loads(out)["accounts"][0]["state"] == "paused"
    mailserver.deliver("alice", message(30, "while paused"))
    time.sleep(3)  # NOTIFY would have brought it in ~0.5 s
    assert not has_subject(mf_env.maildir(), "while paused 30")
    rc, out, err = ctl(mf_env, "sync", "test")
    assert (rc, out) == (1, "")
    assert err == "mailferryctl: account test is paused (mailferryctl resume test)\n"
    rc, out, err = ctl(mf_env, "resume", "test")
    assert (rc, out, err) == (0, "test: resumed\n", "")
    wait_for("the message after resume", lambda: has_subject(mf_env.maildir(), "while paused 30"))
    mailserver.deliver("alice", message(31, "pushed again"))
    wait_for("push after resume", lambda: has_subject(mf_env.maildir(), "pushed again 31"))
    rc, out, err = ctl(mf_env, "pause", "nosuch")
    assert (rc, out, err) == (2, "", "mailferryctl: no account named nosuch\n")


# ----- reload -----------------------------------------------------------------------------

def test_reload_good_and_bad(mf_env, mailserver, running):
    config = mf_env.config_path
    text = config.read_text()
    config.write_text(text.replace(f"poll_interval = {POLL}", "poll_interval = 600"))
    rc, out, err = ctl(mf_env, "reload")
    assert (rc, out, err) == (0, "reloaded\n", "")
    wait_for("the accounts started again", lambda: running.stderr().count("event=push") >= 2)
    config.write_text(text.replace("poll_interval", "poll_intervall"))
    rc, out, err = ctl(mf_env, "reload")
    assert (rc, out) == (1, "")
    line = next(n for n, t in enumerate(config.read_text().splitlines(), 1) if "poll_intervall" in t)
    assert err.startswith(f"reload refused, the running config is kept: {config}:{line}: "
                          f"accounts[test].imap.poll_intervall: unknown key"), err
    assert running.proc.poll() is None
    mailserver.deliver("alice", message(40, "after bad reload"))
    wait_for("push with the kept config",
             lambda: has_subject(mf_env.maildir(), "after bad reload 40"))
    rc, out, err = ctl(mf_env, "status")
    assert rc == 0 and out.startswith("test: ")


# ----- log level --------------------------------------------------------------------------

def test_log_level(mf_env, mailserver, running):
    assert " debug " not in running.stderr()
    rc, out, err = ctl(mf_env, "log-level", "debug")
    assert (rc, out, err) == (0, "log level debug\n", "")
    rc, out, err = ctl(mf_env, "sync", "test", "--wait")
    assert rc == 0
    wait_for("debug lines", lambda: " debug event=ctl command=sync" in running.stderr())
    rc, out, err = ctl(mf_env, "log-level", "warn")
    assert rc == 0
    mark = len(running.stderr())
    rc, out, err = ctl(mf_env, "sync", "test", "--wait")
    assert rc == 0
    assert " debug " not in running.stderr()[mark:] and " info " not in running.stderr()[mark:]
    for args in (["log-level", "loud"], ["log-level"]):
        rc, out, err = ctl(mf_env, *args)
        assert (rc, out) == (2, "")
        assert "(error, warn, info, debug, trace)" in err


def test_unknown_command(mf_env, mailserver, running):
    rc, out, err = ctl(mf_env, "frobnicate")
    assert (rc, out) == (2, "")
    assert err == "mailferryctl: unknown command or bad arguments: frobnicate\n"


# ----- stop -------------------------------------------------------------------------------

def test_stop(mf_env, mailserver, running):
    rc, out, err = ctl(mf_env, "stop")
    assert (rc, out, err) == (0, "stopping\n", "")
    assert running.proc.wait(timeout=15) == 0
    assert "event=exit" in running.stderr()
    assert not socket_path(mf_env).exists()
    rc, out, err = ctl(mf_env, "status")
    assert (rc, out) == (3, "")
    assert err == (f"mailferryctl: mailferryd is not running (nothing answers at "
                   f"{socket_path(mf_env)})\n")


# ----- the socket -------------------------------------------------------------------------

def test_socket_and_directory_modes(mf_env, mailserver, running):
    path = socket_path(mf_env)
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()
    dst = os.stat(path.parent)
    assert stat.S_IMODE(dst.st_mode) == 0o700
    assert dst.st_uid == os.getuid()


def test_an_open_directory_is_refused(mf_env, mailserver):
    reset_server(mailserver)
    d = mf_env.runtime_dir / "mailferry"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    mf_env.write_config()
    proc = mf_env.daemon()
    assert proc.proc.wait(timeout=15) == 1
    assert (f"{d}: the control socket's directory must belong to you and be closed to others "
            f"(chmod 700 {d})") in proc.stderr()


def as_nobody(mf_env, sock, *args):
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
           str(mf_env.binary("mailferryctl")), "-s", str(sock), *args]
    env = dict(mf_env.env, HOME="/nonexistent")
    res = subprocess.run(cmd, env=env, cwd="/", capture_output=True, text=True, timeout=30)
    return res.returncode, res.stdout, res.stderr


@pytest.fixture
def open_socket_dir():
    """A directory under /tmp, reachable by every user, for a control socket."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="mf-ctl-"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_another_user_is_refused(mf_env, mailserver, open_socket_dir):
    reset_server(mailserver)
    sock = open_socket_dir / "ctl" / "ctl.sock"
    d = start_daemon(mf_env, general={"control_socket": str(sock)})
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
    # the directory's mode stops another user before the daemon hears of it
    rc, out, err = as_nobody(mf_env, sock, "status")
    assert (rc, out) == (3, "")
    assert err == f"mailferryctl: {sock}: Permission denied\n"
    # with the directory and the socket opened up, the daemon itself refuses (SO_PEERCRED)
    sock.parent.chmod(0o711)
    sock.chmod(0o666)
    for args in (["status"], ["stop"]):
        rc, out, err = as_nobody(mf_env, sock, *args)
        assert (rc, out) == (1, "")
        assert err == "mailferryd: permission denied: not the daemon's user\n"
    wait_for("the refusal in the log",
             lambda: re.search(r"warn event=ctl-refused uid=65534 pid=\d+: not the daemon's user",
                               d.stderr()))
    assert d.proc.poll() is None
    rc, out, err = mf_env.mailferryctl("-s", sock, "status")
    assert rc == 0 and out.startswith("test: ")


def test_a_stale_socket_is_replaced(mf_env, mailserver, running):
    path = socket_path(mf_env)
    running.stop(signal.SIGKILL)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # left behind
    rc, out, err = ctl(mf_env, "status")
    assert rc == 3 and "mailferryd is not running" in err
    d = start_daemon(mf_env)
    assert "error" not in d.stderr()
    rc, out, err = ctl(mf_env, "status")
    assert rc == 0 and out.startswith("test: ")


def test_something_else_at_the_socket_path_is_kept(mf_env, mailserver):
    path = socket_path(mf_env)
    path.parent.mkdir(mode=0o700)
    path.write_text("not a socket\n")
    mf_env.write_config()
    d = mf_env.daemon()
    assert d.proc.wait(timeout=15) == 1
    assert f"{path}: exists and is not a socket; not replacing it" in d.stderr()
    assert path.read_text() == "not a socket\n"


def test_a_second_daemon_refuses_to_start(mf_env, mailserver, running):
    second = mf_env.daemon()
    assert second.proc.wait(timeout=15) == 1
    err = second.stderr()
    assert (f"another mailferryd is running with the control socket {socket_path(mf_env)}"
            in err), err
    assert "event=start result=failed" in err
    assert running.proc.poll() is None
    rc, out, err = ctl(mf_env, "status")
    assert rc == 0 and out.startswith("test: idle"), running.stderr()


# ----- hostile and slow clients -----------------------------------------------------------

def raw_client(mf_env):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(socket_path(mf_env)))
    return s


def read_all(s, timeout):
    """Everything until the daemon closes. A daemon that answers before it has read the
    whole request resets the connection after its answer (unix sockets do that when
    unread data is dropped): the answer still comes first."""
    s.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_silent_and_partial_clients_block_nobody(mf_env, mailserver, running):
    silent = raw_client(mf_env)
    partial = raw_client(mf_env)
    partial.sendall(MAGIC + b"sta")
    started = time.monotonic()
    rc, out, err = ctl(mf_env, "status")
    assert rc == 0 and out.startswith("test: ")
    assert time.monotonic() - started < 2
    # the daemon gives up on them after a few seconds
    for s in (silent, partial):
        assert read_all(s, timeout=15) == b""
        s.close()
    assert time.monotonic() - started < 12
    assert running.proc.poll() is None


def test_a_client_that_does_not_read_its_answer(mf_env, mailserver, running):
    lazy = raw_client(mf_env)
    lazy.sendall(MAGIC + b"status\0\0")
    rc, out, err = ctl(mf_env, "--json", "status")
    assert rc == 0
    lazy.close()


def test_an_oversized_request_is_refused(mf_env, mailserver, running):
    s = raw_client(mf_env)
    try:
        s.sendall(MAGIC + b"status\0" + b"a" * 70000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_all(s, timeout=10)
    s.close()
    assert answer == b"2\nmailferryd: request too long\n"
    rc, out, err = ctl(mf_env, "status", "x" * 70000)
    assert (rc, out, err) == (2, "", "mailferryd: request too long\n")
    s = raw_client(mf_env)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n\0")
    assert read_all(s, timeout=10) == b"2\nmailferryd: not a mailferry control request\n"
    s.close()
    rc, out, err = ctl(mf_env, "status")
    assert rc == 0
