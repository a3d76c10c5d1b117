"""The daemon never gives up and never hammers: a refused password waits a long time and
says so, a host that does not resolve is tried again after growing pauses, and a sync asked
for by hand does not wait out the pause. Against the real Dovecot (wrong password) and a
name under .invalid (RFC 6761: never resolves)."""

import json
import re
import time

from waiting import wait_for

BACKOFF = re.compile(r"account=test event=backoff seconds=([0-9.]+) reason=(\w+): (.*)")


def backoffs(daemon):
    return [(float(m.group(1)), m.group(2), m.group(3))
            for m in BACKOFF.finditer(daemon.stderr())]


def status(mf_env):
    rc, out, err = mf_env.mailferryctl("--json", "status")
    assert rc == 0, err
    return json.loads(out)["accounts"][0]


def logins(mailserver):
    """Dovecot's log lines of refused logins for alice, so far."""
    return mailserver.log_text("dovecot").count("auth failed")


def test_wrong_password_waits_and_says_so(mf_env, mailserver):
    refused_before = logins(mailserver)
    mf_env.write_config(accounts=[mf_env.account(imap={"password": "not-her-password"})])
    d = mf_env.daemon()
    wait_for("the backoff", lambda: backoffs(d))
    seconds, reason, text = backoffs(d)[0]
    assert reason == "auth"
    assert seconds >= 600, "a refused password must not be retried within minutes"
    assert "not retrying sooner" in text and "authentication failed" in text.lower(), text
    acct = status(mf_env)
    assert acct["state"] == "backoff"
    assert acct["backoff_ms"] > 600_000
    assert "authentication failed" in acct["last_error"].lower()
    # Nothing more happens on its own: one attempt, one refusal.
    time.sleep(3)
    assert len(backoffs(d)) == 1
    assert d.proc.poll() is None
    assert logins(mailserver) - refused_before == 1
    # A sync asked for by hand tries at once (the user may have fixed the password store).
    rc, out, err = mf_env.mailferryctl("sync", "--wait", timeout=60)
    assert rc != 0 and "authentication failed" in (out + err).lower(), (rc, out, err)
    wait_for("the second refusal", lambda: logins(mailserver) - refused_before == 2)


def test_unresolvable_host_is_retried_with_growing_pauses(mf_env, mailserver):
    mf_env.write_config(accounts=[mf_env.account(imap={"host": "mailferry-test.invalid"})])
    d = mf_env.daemon()
    # 1 s, 2 s, 4 s (each +-25%): three attempts within about 7 s, then no busy loop.
    wait_for("three backoffs", lambda: len(backoffs(d)) >= 3, timeout=30)
    waits = backoffs(d)
    assert all(reason == "failure" for _, reason, _ in waits), waits
    assert all("mailferry-test.invalid" in text for _, _, text in waits), waits
    first, second, third = (s for s, _, _ in waits[:3])
    assert 0.75 <= first <= 1.25 and 1.5 <= second <= 2.5 and 3 <= third <= 5, waits
    assert d.proc.poll() is None
    assert status(mf_env)["state"] == "backoff"
