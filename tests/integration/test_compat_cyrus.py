"""The core sync rules of docs/SYNC.md against a second IMAP server, Cyrus IMAP 3.6
(tests/harness/cyrus.py), with `mailferryd --once`: the first pull byte for byte, an upload,
flags both ways, deletes both ways, a local move that becomes a server move, a second sync
that changes nothing, non-ASCII folder names. Each test reads both sides back: the server
over IMAP, the Maildir from disk.

Every test runs under both of Cyrus's namespaces: "alt" (upstream's default: folders beside
INBOX, "/" as separator, like the harness's Dovecot) and "traditional" (what Debian's
imapd.conf sets: every folder below INBOX, "." as separator, so the server's `INBOX.Archive`
is the Maildir `INBOX/Archive`).

Cyrus differs from Dovecot where it matters to a client: it creates no special-use folders,
sends INTERNALDATE with a space-padded day (" 1-Dec-2026"), answers SELECT with
MAILBOXID/URLMECH/ANNOTATIONS codes, reports a MOVE with VANISHED, has QRESYNC, LIST-STATUS
and MOVE but no NOTIFY, and offers SCRAM, DIGEST-MD5 and NTLM besides PLAIN and LOGIN.
No Dovecot is started here.
"""

import datetime
import os
import secrets
import time

import pytest

from conftest import MfEnv
from harness.corpus import crlf
from harness.cyrus import CyrusServer, CyrusUnavailable
from sync_helpers import (FLAG_CASES, Account, imap_flags, letters, message, odd_message,
                          subject, tree_snapshot, ts)

USERS = {f"c{i:02d}": f"pw{i:02d}-{secrets.token_urlsafe(9)}" for i in range(16)}
OLD = datetime.datetime(2023, 5, 17, 8, 30, 12, tzinfo=datetime.timezone.utc)
DAY = 86400


@pytest.fixture(scope="module", params=["alt", "traditional"])
def cyrus(request):
    """One Cyrus per namespace; a skip naming the reason when Cyrus cannot run here. Its
    directory is kept when a test failed (the path is in the failure's teardown output)."""
    srv = CyrusServer(users=USERS, namespace=request.param)
    srv.failed = False
    try:
        srv.start()
    except CyrusUnavailable as e:
        srv.close()
        pytest.skip(f"Cyrus IMAP cannot run here: {e}")
    try:
        yield srv
    finally:
        srv.close(keep=srv.failed or None)


@pytest.fixture
def acct(request, cyrus, tmp_path):
    """A fresh Cyrus user (its INBOX appears at the first login) and a mailferry account
    "test" syncing it over IMAPS into a private Maildir root. A failed test gets the
    server's paths and the tail of its protocol telemetry in its teardown output."""
    used = getattr(cyrus, "_users_used", 0)
    assert used < len(USERS), "more tests than users in USERS"
    cyrus._users_used = used + 1
    env = MfEnv(tmp_path, cyrus)
    failed_before = request.session.testsfailed
    yield Account(cyrus, env, sorted(USERS)[used])
    env.close()
    if request.session.testsfailed > failed_before:
        cyrus.failed = True
        print(f"{cyrus.describe()}\n{cyrus.log_tail(40)}")


def folder(acct, *parts):
    """(server name, Maildir folder) of a personal folder: `A/B` and `A/B` in the alt
    namespace, `INBOX.A.B` and `INBOX/A/B` in the traditional one."""
    if acct.srv.namespace == "alt":
        return "/".join(parts), "/".join(parts)
    return "INBOX." + ".".join(parts), "INBOX/" + "/".join(parts)


def quiet(run):
    s = run.summary
    return (s["down"], s["up"], s["flags"], s["moves"], s["deletes"]) == (0, 0, 0, 0, 0)


def test_first_pull(acct):
    """Rule 7: the server's bytes exactly, mtime = INTERNALDATE (also one Cyrus sends with
    a space-padded day), new/ while unseen, flags as letters; the server's flags stay."""
    cases = FLAG_CASES
    for i, (tag, flags) in enumerate(cases.items()):
        acct.deliver(message(tag), flags=flags, date=ts(OLD) + i * DAY)
    acct.deliver(message("padded-day"),
                 date=datetime.datetime(2024, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc))
    odd = odd_message()
    acct.deliver(odd, date=OLD)
    before = {m.uid: m.flags for m in acct.server()}

    run = acct.once()
    assert run.summary["down"] == len(cases) + 2, run
    assert run.summary["up"] == 0 and run.summary["flags"] == 0, run
    pairs = acct.assert_synced()
    for tag, flags in cases.items():
        srv, loc = pairs[tag]
        assert loc.raw == srv.raw and loc.flags == letters(flags)
        assert loc.sub == ("cur" if "\\Seen" in flags else "new")
    assert int(pairs["padded-day"][1].mtime) == ts(pairs["padded-day"][0].internaldate)
    assert pairs["odd"][1].raw == crlf(odd)
    assert {m.uid: m.flags for m in acct.server()} == before
    assert not list((acct.path() / "tmp").iterdir())


def test_upload_over_starttls(acct):
    """Rule 8, on Cyrus's STARTTLS port: a local new message is APPENDed once with its
    flags and the file's mtime as INTERNALDATE, LF sent as CRLF; the file stays as it is."""
    acct.env.write_config([acct.env.account(name=acct.name, user=acct.user, tls="starttls")])
    files = {"up-new": "", "up-seen": "S", "up-flagged": "FS", "up-all": "DFPRST"}
    paths = {tag: acct.write_local(message(tag, eol="\n" if i % 2 else "\r\n"), flags=flags,
                                   mtime=ts(OLD) + i * DAY)
             for i, (tag, flags) in enumerate(files.items())}
    raws = {tag: p.read_bytes() for tag, p in paths.items()}

    run = acct.once()
    assert "STARTTLS" in run.err, run
    assert run.summary["up"] == len(files) and run.summary["down"] == 0, run
    assert run.count("APPEND") == len(files), run
    server = acct.server_by_subject()
    assert sorted(server) == sorted(files)
    for tag, p in paths.items():
        assert server[tag].raw == crlf(raws[tag]), tag
        assert server[tag].flags == imap_flags(files[tag]), tag
        assert ts(server[tag].internaldate) == int(os.stat(p).st_mtime), tag
        assert p.exists() and p.read_bytes() == raws[tag], tag

    again = acct.once()
    assert quiet(again) and again.count("APPEND") == 0, again
    assert len(acct.server()) == len(files)


def test_flags_both_ways(acct):
    """Rule 9: a flag changed on one side reaches the other; changes of both sides to one
    message merge flag by flag."""
    tags = ["srv-add", "srv-remove", "loc-add", "loc-remove", "both"]
    uids = {tag: acct.deliver(message(tag), flags=("\\Seen",), date=OLD) for tag in tags}
    acct.once()

    acct.set_flags(uids["srv-add"], ["\\Flagged", "\\Answered"])
    acct.clear_flags(uids["srv-remove"], "\\Seen")
    acct.set_flags(uids["both"], "\\Flagged")
    local = acct.local_by_subject()
    acct.rename_flags(local["loc-add"], "DPS")
    acct.rename_flags(local["loc-remove"], "", sub="new")
    acct.rename_flags(local["both"], "RS")

    run = acct.once()
    assert run.summary["down"] == 0 and run.summary["up"] == 0, run
    pairs = acct.assert_synced()
    want = {"srv-add": "FRS", "srv-remove": "", "loc-add": "DPS", "loc-remove": "",
            "both": "FRS"}
    assert {tag: pairs[tag][1].flags for tag in tags} == want
    assert quiet(acct.once())


def test_deletes_both_ways(acct):
    """Rule 10: a message expunged on the server goes from the Maildir, a file removed
    from the Maildir is expunged on the server; the others stay."""
    tags = [f"del{i}" for i in range(6)]
    uids = {tag: acct.deliver(message(tag), flags=("\\Seen",), date=OLD) for tag in tags}
    acct.once()

    acct.expunge(uids["del0"])
    local = acct.local_by_subject()
    os.unlink(local["del1"].path)

    run = acct.once()
    assert run.summary["deletes"] == 2, run
    assert run.summary["down"] == 0 and run.summary["up"] == 0, run
    pairs = acct.assert_synced()
    assert sorted(pairs) == tags[2:]
    assert quiet(acct.once())


def test_local_move_is_a_server_move(acct):
    """Rule 11: a file moved between two Maildirs becomes one UID MOVE (Cyrus has MOVE):
    not uploaded again, the server's copy keeps its bytes and INTERNALDATE in the target."""
    archive, archive_dir = folder(acct, "Archive")
    acct.create_folder(archive)
    moved = message("moved")
    acct.deliver(moved, flags=("\\Seen",), date=OLD)
    acct.deliver(message("stays"), date=OLD)
    acct.once()
    src = acct.local_by_subject()["moved"]
    target = acct.path(archive_dir) / "cur" / src.path.name
    os.rename(src.path, target)

    run = acct.once()
    assert run.count("UID MOVE") == 1, run
    assert run.count("APPEND") == 0 and "BODY.PEEK[]" not in run.err, run
    assert run.summary["moves"] == 1, run
    assert [subject(m.raw) for m in acct.server("INBOX")] == ["stays"]
    archived = acct.server(archive)
    assert [m.raw for m in archived] == [moved]
    assert ts(archived[0].internaldate) == ts(OLD)
    acct.assert_synced("INBOX")
    acct.assert_synced(archive, archive_dir)
    assert [m.path for m in acct.local(archive_dir)] == [target]
    assert quiet(acct.once())


def test_second_sync_changes_nothing(acct):
    """Rule 18: right after a sync the next ones transfer nothing and change nothing on
    either side; with Cyrus's LIST-STATUS and CONDSTORE they cost one LIST, no SELECT."""
    for i in range(4):
        acct.deliver(message(f"down{i}"), flags=("\\Seen",) if i % 2 else (), date=OLD)
        acct.write_local(message(f"up{i}", eol="\n"), flags="S" if i % 2 else "", mtime=OLD)
    rust, rust_dir = folder(acct, "Lists", "rust")
    acct.create_folder(rust)
    acct.deliver(message("rust"), folder=rust, date=OLD)
    first = acct.once()
    assert first.summary["down"] == 5 and first.summary["up"] == 4, first
    snap = tree_snapshot(acct.root)
    status = {f: acct.srv.status(acct.user, f) for f in ("INBOX", rust)}
    time.sleep(0.2)  # the Maildir's times are trusted 100 ms after they moved

    for n in (2, 3):
        run = acct.once()
        assert quiet(run), run
        assert "BODY.PEEK[]" not in run.err and run.count("APPEND") == 0, run
        assert run.count("UID STORE") == 0 and run.count("UID EXPUNGE") == 0, run
        assert tree_snapshot(acct.root) == snap, f"sync {n} changed the Maildir"
        # HIGHESTMODSEQ moves with any change to a folder: nothing was stored.
        assert {f: acct.srv.status(acct.user, f) for f in status} == status
    cmds = [c.split()[0] for c in run.commands()]
    assert "SELECT" not in cmds and cmds.count("LIST") == 1, run.commands()
    acct.assert_synced()
    acct.assert_synced(rust, rust_dir)


def test_non_ascii_folder_names(acct):
    """Rule 1: a server folder named in UTF-8 (modified UTF-7 on the wire) becomes a
    Maildir of that name, and a Maildir created locally with such a name becomes a server
    folder; messages go both ways in them."""
    down, down_dir = folder(acct, "Grüße", "Überfällig")
    acct.create_folder(down)
    acct.deliver(message("down-utf8"), folder=down, date=OLD)
    acct.once()
    assert [m.subject for m in acct.local(down_dir)] == ["down-utf8"]

    up, up_dir = folder(acct, "Ärger ✓")
    acct.write_local(message("up-utf8", eol="\n"), folder=up_dir, flags="S", mtime=OLD)
    run = acct.once()
    assert run.summary["up"] == 1, run
    assert "&AMQ-rger &JxM-" in run.err, run  # the name as modified UTF-7 on the wire
    names = acct.server_folders()
    assert {down, up} <= set(names), names
    acct.assert_synced(down, down_dir)
    acct.assert_synced(up, up_dir)
    assert quiet(acct.once())


def test_folders_beside_and_below_inbox(acct):
    """Maildirs beside INBOX and below it. The alt namespace takes both, '.' in a name
    included. The traditional one refuses a folder beside INBOX (Cyrus answers NO
    Permission denied), and a name holding its separator '.' would name another hierarchy:
    both are reported, naming the folder, and left alone; everything else syncs."""
    acct.write_local(message("beside"), folder="Beside", flags="S", mtime=OLD)
    acct.write_local(message("dotted"), folder="INBOX/v1.2", flags="S", mtime=OLD)
    acct.write_local(message("below"), folder="INBOX/Below", flags="S", mtime=OLD)
    acct.write_local(message("inbox"), flags="S", mtime=OLD)
    if acct.srv.namespace == "alt":
        acct.once()
        synced = {"Beside": "Beside", "INBOX/v1.2": "INBOX/v1.2", "INBOX/Below": "INBOX/Below"}
    else:
        run = acct.once(rc=1)
        assert "folder Beside: creating it on the server" in run.err, run
        assert "Permission denied" in run.err, run
        assert "INBOX/v1.2" in run.err and "delimiter" in run.err, run
        synced = {"INBOX.Below": "INBOX/Below"}
        for local, tag in (("Beside", "beside"), ("INBOX/v1.2", "dotted")):
            assert [m.subject for m in acct.local(local)] == [tag]
    assert set(acct.server_folders()) == {"INBOX", *synced}
    acct.assert_synced()
    for server_name, local in synced.items():
        acct.assert_synced(server_name, local)
