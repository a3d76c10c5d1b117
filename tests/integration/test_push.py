"""The daemon keeps both sides in step as things happen: mail and flags from the server
reach the Maildir, a reader's changes reach the server, without a poll in between; it
survives a server restart and a watcher that lost events; it stops cleanly on SIGTERM in
the middle of a sync and reloads on SIGHUP. Every wait has a deadline; nothing sleeps for
a fixed time to let something happen."""

import json
import os
import pathlib
import re
import signal
import time

import pytest
from daemon_mail import files, message, reset_server
from harness.corpus import crlf
from waiting import wait_for

# Polling is set far beyond any test's length: what arrives, arrived by push.
POLL = 3600


def base(name):
    return name.split(":2,")[0]


def flags_of(name):
    return name.split(":2,")[1] if ":2," in name else ""


def log_has(daemon, text):
    return text in daemon.stderr()


@pytest.fixture
def running(mf_env, mailserver):
    """A daemon for alice, after its first sync (INBOX holds two messages)."""
    reset_server(mailserver)
    for n in range(2):
        mailserver.deliver("alice", message(n))
    mf_env.write_config(accounts=[mf_env.account(imap={"poll_interval": POLL})])
    d = mf_env.daemon("-v")
    inbox = mf_env.maildir()
    wait_for("the first sync", lambda: len(files(inbox)) == 2)
    wait_for("push to start", lambda: log_has(d, "event=push"))
    return d


def server_by_subject(mailserver, folder, subject):
    return [m for m in mailserver.messages("alice", folder) if subject.encode() in m.raw]


def server_changes_reach(mf_env, mailserver, folder):
    """A delivery, a flag change and an expunge on the server each reach the Maildir."""
    local = mf_env.maildir(folder=folder)
    before = len(files(local))
    raw = message(7, "arrives")
    uid = mailserver.deliver("alice", raw, folder=folder)
    name = wait_for("the new message in the Maildir",
                    lambda: [n for n, p in files(local).items() if crlf(p.read_bytes()) == raw])
    mailserver.set_flags("alice", folder, uid, ["\\Flagged", "\\Seen"])
    wait_for("the flags on the file",
             lambda: any(flags_of(n) == "FS" for n in files(local) if base(n) == base(name[0])))
    mailserver.expunge("alice", folder, uid)
    wait_for("the file to go",
             lambda: not any(base(n) == base(name[0]) for n in files(local)))
    assert len(files(local)) == before


# Dovecot names folders in UTF-8 in its NOTIFY news ("Café", "Fish & Chips"),
# not in the modified UTF-7 of its LIST ("Caf&AOk-", "Fish &- Chips").
@pytest.mark.parametrize("folder", ["INBOX", "Café", "Fish & Chips"])
def test_server_changes_reach_the_maildir(mf_env, mailserver, running, folder):
    assert log_has(running, "event=push mode=NOTIFY")
    if folder != "INBOX":
        mailserver.create_folder("alice", folder)
        wait_for(f"{folder} watched", lambda: log_has(running, f'folder="{folder}" event=watching'))
    server_changes_reach(mf_env, mailserver, folder)


@pytest.mark.parametrize("capability_profile", ["gmail"], indirect=True)
def test_idle_brings_the_inbox_news(mf_env, mailserver, running):
    """A server without NOTIFY (Gmail's capabilities): INBOX is pushed by IDLE."""
    assert log_has(running, "event=push mode=IDLE folder=INBOX")
    server_changes_reach(mf_env, mailserver, "INBOX")


def test_reader_changes_reach_the_server(mf_env, mailserver, running):
    inbox = mf_env.maildir()
    # a new file, as a local delivery would make it
    tmp = inbox / "tmp" / "1.local.host"
    tmp.write_bytes(message(9, "written locally"))
    os.rename(tmp, inbox / "new" / "1.local.host")
    wait_for("the upload", lambda: server_by_subject(mailserver, "INBOX", "written locally"))
    # a flag change: the reader renames the file
    name, path = sorted(files(inbox).items())[0]
    os.rename(path, inbox / "cur" / (base(name) + ":2,FS"))
    wait_for("the flag on the server", lambda: any(
        {"\\Flagged", "\\Seen"} <= m.flags for m in mailserver.messages("alice", "INBOX")))
    # a delete
    before = len(mailserver.messages("alice", "INBOX"))
    gone, gone_path = sorted(files(inbox).items())[-1]
    os.unlink(gone_path)
    wait_for("the expunge", lambda: len(mailserver.messages("alice", "INBOX")) == before - 1)
    # our own writes did not come back as changes: the server holds exactly what we have
    assert len(mailserver.messages("alice", "INBOX")) == len(files(inbox))


def test_a_move_stays_a_move(mf_env, mailserver, running):
    mailserver.create_folder("alice", "Archive2")
    archive = mf_env.maildir(folder="Archive2")
    # A reader moves into a folder it sees; a move into a folder that is being
    # created that very moment may become an upload and a delete (see
    # docs/SYNC.md, rule 11).
    wait_for("the new server folder watched (NOTIFY names it)",
             lambda: 'folder="Archive2" event=watching' in running.stderr())
    inbox = mf_env.maildir()
    name, path = sorted(files(inbox).items())[0]
    body = path.read_bytes()
    os.rename(path, archive / "cur" / (base(name) + ":2,S"))
    wait_for("the message in Archive2 on the server",
             lambda: any(m.raw == body for m in mailserver.messages("alice", "Archive2")))
    wait_for("the message gone from INBOX on the server",
             lambda: not any(m.raw == body for m in mailserver.messages("alice", "INBOX")))
    try:
        wait_for("the move in the log", lambda: "moves=1" in running.stderr())
    except pytest.fail.Exception:
        pytest.fail(f"no move in the daemon's log:\n{running.stderr()}")


def test_a_save_in_two_halves_is_a_move(mf_env, mailserver, running):
    """neomutt's save: a rewritten copy in the other folder now, the original
    removed only when the reader syncs its folder, seconds later."""
    archive = mf_env.maildir(folder="Archive")
    wait_for("Archive watched", lambda: 'folder="Archive" event=watching' in running.stderr())
    inbox = mf_env.maildir()
    name, path = sorted(files(inbox).items())[0]
    original = path.read_bytes()
    assert [m.raw for m in mailserver.messages("alice", "INBOX") if m.raw == original]
    raw = original.replace(b"\r\n", b"\n")
    head, body = raw.split(b"\n\n", 1)
    copy = head + b"\nContent-Length: %d\n\n" % len(body) + body
    tmp = archive / "tmp" / "1.neomutt.host"
    tmp.write_bytes(copy)
    os.rename(tmp, archive / "cur" / "1.neomutt.host:2,S")
    time.sleep(1.5)  # the reader's own delay, not a wait for us
    os.unlink(path)
    wait_for("the move", lambda: "moves=1" in running.stderr())
    # Moved on the server, not uploaded: the server's own bytes, not the rewrite.
    [moved] = mailserver.messages("alice", "Archive")
    assert moved.raw == original
    assert len(mailserver.messages("alice", "INBOX")) == 1


def test_a_save_whose_copy_was_seen_alone_is_a_move(mf_env, mailserver, running):
    """A pass that sees the copy of a save alone, late enough to trust the folder's
    times, holds it as maybe half of a move. That folder's times must not be recorded:
    the pass after the original's removal took the folder for unchanged, deleted the
    original on the server as a reader's delete, and the held copy never went up (the
    soak found it)."""
    archive = mf_env.maildir(folder="Archive")
    wait_for("Archive watched", lambda: 'folder="Archive" event=watching' in running.stderr())
    inbox = mf_env.maildir()
    name, path = sorted(files(inbox).items())[0]
    original = path.read_bytes()
    tmp = archive / "tmp" / "2.reader.host"
    tmp.write_bytes(original)
    os.rename(tmp, archive / "cur" / "2.reader.host:2,S")
    time.sleep(0.3)  # the folder's times are trusted 100 ms after they change
    rc, _, err = mf_env.mailferryctl("sync", "--wait")
    assert rc == 0, err
    assert "event=hold file=2.reader.host" in running.stderr()
    os.unlink(path)
    wait_for("the move", lambda: "moves=1" in running.stderr())
    [moved] = mailserver.messages("alice", "Archive")
    assert moved.raw == original
    assert len(mailserver.messages("alice", "INBOX")) == 1


def test_new_folders_both_ways(mf_env, mailserver, running):
    mailserver.create_folder("alice", "From server")
    mailserver.deliver("alice", message(3, "in new folder"), folder="From server")
    local = mf_env.maildir(folder="From server")
    # NOTIFY names new folders; without it the next pass finds them
    wait_for("the new server folder's message",
             lambda: len(files(local)) == 1, timeout=30)
    mine = mf_env.maildir(folder="Made locally")
    for sub in ("tmp", "new", "cur"):
        (mine / sub).mkdir(parents=True)
    wait_for("the local folder on the server",
             lambda: any(f.name == "Made locally" for f in mailserver.list_folders("alice")))


def test_reconnects_after_a_server_restart(mf_env, mailserver, running):
    inbox = mf_env.maildir()
    mailserver.stop()
    wait_for("the daemon to notice", lambda: log_has(running, "event=backoff"), timeout=60)
    # a change made while the server is gone
    name, path = sorted(files(inbox).items())[0]
    os.rename(path, inbox / "cur" / (base(name) + ":2,F"))
    mailserver.start()
    wait_for("the flag pushed after the reconnect", lambda: any(
        "\\Flagged" in m.flags for m in mailserver.messages("alice", "INBOX")), timeout=60)
    mailserver.deliver("alice", message(11, "after restart"))
    wait_for("push working again",
             lambda: any(b"after restart" in p.read_bytes() for p in files(inbox).values()),
             timeout=30)
    assert running.proc.poll() is None


def test_polling_alone_finds_new_mail(mf_env, mailserver):
    """With one connection there is no push: each poll lists the folders with
    LIST-STATUS on the connection whose last job left INBOX selected. The
    answer for INBOX must not be the session's stale view of it."""
    reset_server(mailserver)
    mailserver.deliver("alice", message(30, "before"))
    mf_env.write_config(accounts=[mf_env.account(
        imap={"poll_interval": 1, "max_connections": 1})])
    d = mf_env.daemon("-v")
    inbox = mf_env.maildir()
    wait_for("the first sync", lambda: len(files(inbox)) == 1)
    for n in range(31, 33):
        mailserver.deliver("alice", message(n, "polled"))
        wait_for(f"polled message {n} in the Maildir", lambda: any(
            f"polled {n}".encode() in p.read_bytes() for p in files(inbox).values()))
    assert len(files(inbox)) == 3
    assert d.stop() == 0


def test_lost_watcher_events_mean_a_rescan(mf_env, mailserver):
    reset_server(mailserver)
    mf_env.write_config(accounts=[mf_env.account(imap={"poll_interval": POLL})])
    inbox = mf_env.maildir()
    # The kernel sizes an inotify queue when it is made: a tiny one for this
    # daemon only (the setting is put back as soon as its watcher exists).
    limit = pathlib.Path("/proc/sys/fs/inotify/max_queued_events")
    old = limit.read_text()
    try:
        limit.write_text("16\n")
        d = mf_env.daemon("-v")
        wait_for("the watcher", lambda: log_has(d, "event=start maildir="))
    finally:
        limit.write_text(old)
    wait_for("push to start", lambda: log_has(d, "event=push"))
    # While the daemon is stopped nobody reads the queue: it overflows.
    d.proc.send_signal(signal.SIGSTOP)
    try:
        for n in range(60):
            tmp = inbox / "tmp" / f"{n}.burst.host"
            tmp.write_bytes(message(100 + n, "burst"))
            os.rename(tmp, inbox / "new" / f"{n}.burst.host")
    finally:
        d.proc.send_signal(signal.SIGCONT)
    wait_for("the overflow", lambda: log_has(d, "watch-overflow"))
    wait_for("all 60 on the server",
             lambda: len(server_by_subject(mailserver, "INBOX", "burst")) == 60, timeout=60)


def passes(daemon):
    """The daemon's passes so far, as dicts of their counts (down, up, flags, ...)."""
    return [{k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m)}
            for m in re.findall(r"account=test event=sync (.*)", daemon.stderr())]


def test_a_burst_is_a_few_passes(mf_env, mailserver, running):
    """1,000 files delivered at once, then all 1,000 marked read at once by a reader: each
    burst reaches the server in a handful of passes (each one pipelined APPENDs or one
    UID STORE per flag set), not one round trip per file."""
    inbox = mf_env.maildir()
    n = 1000
    first = len(passes(running))
    for i in range(n):
        tmp = inbox / "tmp" / f"{i}.burst.host"
        tmp.write_bytes(message(1000 + i, "burst"))
        os.rename(tmp, inbox / "new" / f"{i}.burst.host")
    wait_for("1,000 uploads", lambda: sum(p["up"] for p in passes(running)) == n, timeout=120)
    uploading = passes(running)[first:]
    assert len(uploading) <= 10, uploading
    burst = [(name, path) for name, path in files(inbox).items() if ".burst." in name]
    assert len(burst) == n
    wait_for("the account to settle",
             lambda: json.loads(mf_env.mailferryctl("--json", "status")[1])
             ["accounts"][0]["state"] == "idle")
    first = len(passes(running))
    for name, path in burst:
        os.rename(path, inbox / "cur" / (base(name) + ":2,S"))
    wait_for("1,000 flags on the server",
             lambda: sum(p["flags"] for p in passes(running)[first:]) == n, timeout=120)
    flagging = passes(running)[first:]
    assert len(flagging) <= 10, flagging
    seen = [m for m in server_by_subject(mailserver, "INBOX", "burst") if "\\Seen" in m.flags]
    assert len(seen) == n
    assert len(mailserver.messages("alice", "INBOX")) == n + 2


def test_sigterm_in_the_middle_of_a_sync(mf_env, mailserver):
    reset_server(mailserver)
    items = [message(n, "bulk") for n in range(1500)]
    mailserver.seed("alice", "INBOX", items)
    mf_env.write_config(accounts=[mf_env.account(imap={"poll_interval": POLL})])
    d = mf_env.daemon()
    inbox = mf_env.maildir()
    wait_for("the sync to be under way", lambda: len(files(inbox)) > 0, timeout=60)
    started = time.monotonic()
    assert d.stop(signal.SIGTERM, timeout=20) == 0
    assert time.monotonic() - started < 10
    # a restart finishes the job, with nothing twice
    rc, out, err = mf_env.mailferryd("--once")
    assert rc == 0, err
    assert len(files(inbox)) == 1500
    assert len(set(base(n) for n in files(inbox))) == 1500


def test_sighup_reload(mf_env, mailserver, running):
    config = mf_env.config_path
    good = config.read_text().replace(f"poll_interval = {POLL}", "poll_interval = 600")
    config.write_text(good)
    running.proc.send_signal(signal.SIGHUP)
    wait_for("the reload", lambda: log_has(running, "event=reload result=ok"))
    config.write_text(good.replace("poll_interval", "poll_intervall"))
    running.proc.send_signal(signal.SIGHUP)
    wait_for("the refused reload", lambda: log_has(running, "event=reload result=failed"))
    assert f"{config}:" in running.stderr() and "poll_intervall" in running.stderr()
    # still working with the config it had
    mailserver.deliver("alice", message(21, "after reload"))
    wait_for("push after the reloads", lambda: any(
        b"after reload" in p.read_bytes() for p in files(mf_env.maildir()).values()))
    assert running.stop() == 0
