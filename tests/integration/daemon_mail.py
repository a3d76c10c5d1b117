"""Small messages, Maildir listings, server resets and the daemon's status for the daemon
tests (push, control, hooks, notify, outbox, keepalive, clock)."""

import json
import os
import pathlib
import time


def message(n, subject="test"):
    """A message from sender to alice, CRLF, with a Message-ID unique to this call."""
    return (f"From: sender@example.test\r\nTo: alice@example.test\r\n"
            f"Subject: {subject} {n}\r\nMessage-ID: <{n}-{time.time_ns()}@example.test>\r\n"
            f"\r\nbody {n}\r\n").encode()


def files(folder):
    """A Maildir folder's messages: file name -> path, new/ and cur/ together."""
    out = {}
    for sub in ("new", "cur"):
        d = pathlib.Path(folder) / sub
        if d.is_dir():
            for p in d.iterdir():
                out[p.name] = p
    return out


def count_files(folder):
    """How many messages a Maildir folder holds (new/ and cur/)."""
    return sum(len(os.listdir(folder / sub)) for sub in ("new", "cur")
               if (folder / sub).is_dir())


def reset_server(mailserver):
    """alice's mail emptied: every folder but INBOX and the special-use ones deleted, every
    message expunged."""
    for f in mailserver.list_folders("alice"):
        if f.name != "INBOX" and not f.special_use and "\\Noselect" not in f.attributes:
            mailserver.delete_folder("alice", f.name)
    mailserver.doveadm("expunge", "-u", "alice", "mailbox", "*", "all")


def reset_smtp_server(srv):
    """alice's and bob's mail gone, and SMTP refusing just the harness's reject and defer
    addresses again."""
    for user in ("alice", "bob"):
        srv.doveadm("expunge", "-u", user, "mailbox", "*", "all")
    srv.smtp_accept(srv.address("bob"))
    srv.smtp_reject(srv.reject_address)
    srv.smtp_defer(srv.defer_address)


def push_and_state(mf_env):
    """(push mode, state) of the account from `mailferryctl --json status`, None while the
    daemon does not answer yet."""
    rc, out, _ = mf_env.mailferryctl("--json", "status")
    if rc != 0:
        return None
    acct = json.loads(out)["accounts"][0]
    return acct["push"], acct["state"]
