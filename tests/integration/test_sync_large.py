"""docs/SYNC.md rule 19 against the real Dovecot, under every capability profile: many
messages go out as pipelined commands over several connections, and a 50 MB message travels
down and another up while mailferryd's peak RSS stays far below 50 MB, so bodies stream
through (FETCH literal into tmp/, file into the APPEND literal, synchronizing or not) and
never sit whole in memory."""

import datetime
import re

import pytest

from harness.corpus import crlf
from sync_helpers import CORE_PROFILES, acct, message, sanitized, sync_module, ts  # noqa: F401

pytestmark = sync_module(profiles=CORE_PROFILES)

OLD = datetime.datetime(2023, 5, 17, 8, 30, 12, tzinfo=datetime.timezone.utc)
BIG = 50 << 20


def big_message(tag):
    """A ~50 MB message: base64-like lines, so it is ordinary mail, not one huge line."""
    head = message(tag, body="").split(b"\r\n\r\n")[0].replace(
        b"Content-Type: text/plain; charset=utf-8", b"Content-Type: application/octet-stream")
    head = head.replace(b"Content-Transfer-Encoding: 8bit", b"Content-Transfer-Encoding: base64")
    line = (b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx"
            b"MjM0NTY3\r\n")
    count = BIG // len(line) + 1
    return head + b"\r\n\r\n" + line * count


@pytest.mark.timeout(600)
def test_large_message(acct, capability_profile):
    """A 50 MB message down and another up, with mailferryd's peak RSS far below 50 MB:
    bodies stream, they never sit whole in memory."""
    down = big_message("big-down")
    acct.deliver(down, date=OLD)
    up = big_message("big-up").replace(b"\r\n", b"\n")
    acct.write_local(up, flags="S", mtime=OLD)

    asan = sanitized(acct.env)
    if asan:
        # ASan keeps freed memory in a quarantine (256 MB by default), which would count
        # every buffer the transfer ever used.
        opts = acct.env.env.get("ASAN_OPTIONS", "")
        acct.env.env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=4"
    run = acct.once(trace=False)
    assert (run.summary["down"], run.summary["up"]) == (1, 1), run
    if asan:  # shadow memory alone is some 30 MB: compare with a sync that moves nothing
        idle = acct.once(trace=False)
        assert run.peak_rss_mb - idle.peak_rss_mb < 20, f"{idle.peak_rss_mb:.1f} MB idle\n{run}"
    else:
        assert run.peak_rss_mb < 25, run
    server = acct.server_by_subject()
    assert server["big-up"].raw == crlf(up)
    assert server["big-up"].size == len(crlf(up))
    local = acct.local_by_subject()
    assert local["big-down"].raw == down
    assert int(local["big-down"].mtime) == ts(OLD)


def test_pipelined(acct, capability_profile):
    """Many messages both ways in one sync: the downloads go out as one UID FETCH, the
    uploads are all written before the server has answered the first (where the server
    takes non-synchronizing literals), flag changes are one UID STORE per kind of change,
    and the folders sync side by side over several connections."""
    n_down, n_up = 300, 120
    acct.srv.seed(acct.user, "INBOX", [(message(f"down{i}"), (), OLD) for i in range(n_down)])
    for i in range(n_up):
        acct.write_local(message(f"up{i}", eol="\n"), flags="S", mtime=OLD)
    for folder in ("A", "B", "C", "D"):
        acct.srv.seed(acct.user, folder, [(message(f"{folder}{i}"), (), OLD) for i in range(5)])

    run = acct.once()
    s = run.summary
    assert (s["down"], s["up"]) == (n_down + 20, n_up), run
    inbox = acct.srv.status(acct.user)
    assert inbox["MESSAGES"] == n_down + n_up
    cmds = run.commands()
    assert [c for c in cmds if "BODY.PEEK[]" in c and "INTERNALDATE" in c].count(
        "UID FETCH 1:300 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])") == 1, run
    if capability_profile in ("full", "o365"):  # LITERAL+
        lines = run.err.splitlines()
        first_done = next(i for i, ln in enumerate(lines) if "Append completed" in ln)
        sent = sum(1 for ln in lines[:first_done] if " APPEND " in ln and " C: " in ln)
        assert sent >= 32, f"only {sent} APPENDs before the first completed"
    conns = {int(c) for c in re.findall(r"conn=(\d+) C: \S+ SELECT", run.err)}
    assert len(conns) >= 2, run
    acct.assert_synced()

    # Every message flagged and read: two distinct changes (+F for the uploaded ones, which
    # were read already, +F +S for the others), so two UID STOREs.
    for m in acct.local():
        acct.rename_flags(m, "FS", sub="cur")
    run = acct.once()
    assert run.summary["flags"] == n_down + n_up, run
    assert run.count("UID STORE") == 2, run
    assert {frozenset(m.flags) for m in acct.server(body=False)} == {frozenset({"\\Seen", "\\Flagged"})}
