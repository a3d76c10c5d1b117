"""Hooks (new_mail_command, post_sync_command) on a running daemon: a burst of 200
deliveries runs new_mail_command a few times, never overlapping, with counts that add
up to 200 and the right account and folders; post_sync_command runs; a hook that hangs
is killed (with what it started) after hook_timeout while the sync goes on; a failing
hook is logged and changes nothing."""

import os
import subprocess
import time

from daemon_mail import count_files, message, reset_server
from waiting import wait_for

POLL = 3600

# Writes one file per run: start time, the four variables (NUL-separated), end time.
RECORD = ('f="{dir}/run.$(date +%s%N).$$"; s=$(date +%s.%N); sleep 0.2; '
          'printf "%s\\0%s\\0%s\\0%s\\0%s\\0%s" "$s" "$MAILFERRY_ACCOUNT" "$MAILFERRY_EVENT" '
          '"$MAILFERRY_NEW" "$MAILFERRY_FOLDERS" "$(date +%s.%N)" > "$f.tmp" && mv "$f.tmp" "$f"')


def runs(directory):
    out = []
    for p in sorted(directory.glob("run.*")):
        if p.name.endswith(".tmp"):
            continue
        start, account, event, new, folders, end = p.read_bytes().decode().split("\0")
        out.append({"start": float(start), "end": float(end), "account": account,
                    "event": event, "new": int(new),
                    "folders": folders.split("\n") if folders else []})
    return sorted(out, key=lambda r: r["start"])


def start(mf_env, **account):
    imap = {"poll_interval": POLL, **account.pop("imap", {})}
    mf_env.write_config(accounts=[mf_env.account(imap=imap, **account)])
    d = mf_env.daemon("-v")
    wait_for("push to start", lambda: "event=push" in d.stderr() or d.proc.poll() is not None)
    assert d.proc.poll() is None, d.stderr()
    return d


def test_a_burst_runs_the_hook_a_few_times(mf_env, mailserver):
    reset_server(mailserver)
    mailserver.create_folder("alice", "Lists/rust")
    new_dir, post_dir = mf_env.home / "new-mail", mf_env.home / "post-sync"
    new_dir.mkdir()
    post_dir.mkdir()
    start(mf_env, new_mail_command=RECORD.format(dir=new_dir),
          post_sync_command=RECORD.format(dir=post_dir))
    # the first sync brought nothing: no new-mail run; post-sync ran
    wait_for("post_sync_command", lambda: runs(post_dir))
    assert runs(new_dir) == []
    first = runs(post_dir)[0]
    assert (first["account"], first["event"], first["new"]) == ("test", "post-sync", 0)

    # 200 messages, as an MTA delivers them, into two folders, while the daemon runs
    for n in range(150):
        refused = mailserver.lmtp_send("alice", message(n, "burst"))
        assert not refused
        if n == 75:
            mailserver.seed("alice", "Lists/rust", [message(1000 + k, "list") for k in range(50)])
    inbox, rust = mf_env.maildir(), mf_env.maildir(folder="Lists/rust")
    wait_for("all 200 in the Maildir", lambda: count_files(inbox) == 150
             and count_files(rust) == 50, timeout=60)
    wait_for("the counts to add up to 200",
             lambda: sum(r["new"] for r in runs(new_dir)) == 200, timeout=30)
    time.sleep(6)  # a run more would start within the 5 s spacing
    got = runs(new_dir)
    assert sum(r["new"] for r in got) == 200
    assert 1 <= len(got) <= 5, [(r["new"], r["folders"]) for r in got]
    assert all(r["account"] == "test" and r["event"] == "new-mail" for r in got)
    assert all(r["new"] > 0 for r in got)
    folders = set()
    for r in got:
        assert len(r["folders"]) == len(set(r["folders"]))
        folders.update(r["folders"])
    assert folders == {"INBOX", "Lists/rust"}
    # never two at once, and at least the spacing between starts
    for a, b in zip(got, got[1:]):
        assert b["start"] >= a["end"]
        assert b["start"] - a["start"] >= 4.5  # 5 s by the loop's clock, less the time to fork
    # post-sync ran after those syncs too, with the same news
    wait_for("post-sync counts", lambda: sum(r["new"] for r in runs(post_dir)) == 200,
             timeout=15)
    assert {r["event"] for r in runs(post_dir)} == {"post-sync"}


def test_a_hook_that_hangs_is_killed(mf_env, mailserver):
    reset_server(mailserver)
    marker = f"987.{os.getpid() % 1000:03d}"
    d = start(mf_env, new_mail_command=f"sleep {marker} & sleep {marker}; echo never",
              hook_timeout=2)
    inbox = mf_env.maildir()
    mailserver.deliver("alice", message(1))
    wait_for("the hook to start", lambda: subprocess.run(["pgrep", "-f", f"sleep {marker}"],
                                                         capture_output=True).returncode == 0)
    started = time.monotonic()
    # the sync goes on while the hook hangs
    mailserver.deliver("alice", message(2))
    wait_for("the second message", lambda: count_files(inbox) == 2)
    wait_for("the timeout", lambda: "event=hook-failed timed out after 2 s: killed"
             in d.stderr(), timeout=10)
    assert time.monotonic() - started < 5
    # the shell and the job it started in the background are gone
    wait_for("the hook's processes to go", lambda: subprocess.run(
        ["pgrep", "-f", f"sleep {marker}"], capture_output=True).returncode == 1, timeout=5)
    assert "never" not in d.stderr()
    assert d.proc.poll() is None


def test_a_failing_hook_is_logged_and_changes_nothing(mf_env, mailserver):
    reset_server(mailserver)
    d = start(mf_env, new_mail_command="echo hook speaking >&2; exit 3",
              post_sync_command="/nonexistent/command")
    mailserver.deliver("alice", message(1))
    wait_for("the message", lambda: count_files(mf_env.maildir()) == 1)
    wait_for("the failure in the log", lambda: "account=test hook=new-mail "
             "event=hook-failed exit status 3" in d.stderr())
    assert "hook speaking" in d.stderr()
    wait_for("post-sync's failure", lambda: "account=test hook=post-sync "
             "event=hook-failed exit status 127" in d.stderr())
    rc, out, err = mf_env.mailferryctl("--json", "status")
    assert rc == 0 and '"last_error": ""' in out
    mailserver.deliver("alice", message(2))
    wait_for("the next message", lambda: count_files(mf_env.maildir()) == 2)
    assert d.proc.poll() is None
