"""A push connection that dies without a word, with no clock jump to give it away, is found
when push renews its IDLE: every `keepalive` seconds DONE must be answered within
`timeout`. The daemon then starts push again on a fresh connection, drops the pool's unused
connections (they went quiet as well) and syncs, so what reached the server meanwhile
arrives; then push works again. Under NOTIFY (Dovecot's full profile) and under IDLE
(the Gmail profile). About 20 s per case."""

import re
import time

import pytest
from daemon_mail import files, message, push_and_state
from silence import freeze_quiet, thaw
from waiting import wait_for

POLL = 3600  # seconds: nothing in this test arrives by polling
KEEPALIVE = 5
TIMEOUT = 3
NO_ANSWER = re.compile(r"event=disconnected \S+: no answer from the server for 3 s")
PUSH_MODE = {"full": "NOTIFY", "gmail": "IDLE"}


def arrived(folder, raw):
    return [p for p in files(folder).values() if p.read_bytes() == raw]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("capability_profile", ["full", "gmail"], indirect=True, scope="module")
def test_a_silent_connection_is_found_by_keepalive(mf_env, mailserver, capability_profile):
    mode = PUSH_MODE[capability_profile]
    mailserver.deliver("alice", message(0, "before"))
    mf_env.write_config(accounts=[mf_env.account(
        imap={"poll_interval": POLL, "timeout": TIMEOUT, "keepalive": KEEPALIVE})])
    d = mf_env.daemon("-v")
    inbox = mf_env.maildir()
    wait_for("the first sync", lambda: len(files(inbox)) == 1)
    wait_for(f"push by {mode}, nothing to do", lambda: push_and_state(mf_env) == (mode, "idle"))

    frozen = wait_for("a quiet moment to freeze the daemon's IMAP sessions",
                      lambda: freeze_quiet(mailserver, "alice"))
    try:
        assert "IDLE" in frozen.values(), f"no push connection among {frozen}"
        silent = message(1, "while silent")
        mailserver.deliver("alice", silent)
        t0 = time.monotonic()
        # At most: the rest of one keepalive, the timeout, the first retry pause (about 1 s).
        wait_for("the message in the Maildir, byte for byte",
                 lambda: arrived(inbox, silent), timeout=KEEPALIVE + TIMEOUT + 6)
        assert time.monotonic() - t0 > 1, "push saw the message: nothing was silent"
    finally:
        thaw(frozen)

    wait_for(f"push by {mode} again, nothing to do",
             lambda: push_and_state(mf_env) == (mode, "idle"), timeout=2 * TIMEOUT)
    awake = message(2, "after")
    mailserver.deliver("alice", awake)
    wait_for("the next message, by push", lambda: arrived(inbox, awake))
    assert d.stop() == 0, d.stderr()
    log = d.stderr()
    # Found by push's renewal alone: one dead connection, none borrowed by the sync after it.
    assert len(NO_ANSWER.findall(log)) == 1, log
    assert "event=clock-jump" not in log, log
