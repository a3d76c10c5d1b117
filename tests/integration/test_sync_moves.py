"""docs/SYNC.md rule 11 against the real Dovecot, under every capability profile: a message
the reader moved to another folder (a rename, or neomutt's save: a rewritten copy in the
destination and the original removed) becomes one UID MOVE on the server (COPY + \\Deleted +
EXPUNGE without MOVE), never an upload, and a flag changed on the server meanwhile is kept."""

import datetime
import os
import re

import pytest

from conftest import MfEnv
from harness.corpus import crlf
from sync_helpers import (CORE_PROFILES, Account, acct, body_of, imap_flags, message,  # noqa: F401
                          set_acl, start_acl_server, subject, sync_module)

pytestmark = sync_module(profiles=CORE_PROFILES)

OLD = datetime.datetime(2021, 7, 4, 9, 15, 0, tzinfo=datetime.timezone.utc)


def seeded(acct, cases, folder="INBOX"):
    uids = {tag: acct.deliver(raw, folder=folder, flags=flags, date=OLD)
            for tag, (raw, flags) in cases.items()}
    acct.once()
    acct.assert_synced(folder)
    return uids


def move_file(acct, msg, folder, flags=None):
    """A reader's move: the same file renamed into another folder's Maildir."""
    dest = acct.path(folder)
    for s in ("cur", "new", "tmp"):
        (dest / s).mkdir(parents=True, exist_ok=True)
    name = msg.path.name if flags is None else f"{msg.base}:2,{''.join(sorted(flags))}"
    sub = msg.sub if flags is None else ("cur" if "S" in flags else "new")
    os.rename(msg.path, dest / sub / name)
    return dest / sub / name


def assert_moved_on_server(run, n, profile_has_move):
    """The trace shows n messages moved and nothing uploaded."""
    assert run.count("APPEND") == 0, run
    if profile_has_move:
        assert run.count("UID MOVE") >= 1 and run.count("UID COPY") == 0, run
    else:
        assert run.count("UID COPY") >= 1 and run.count("UID MOVE") == 0, run
    assert run.summary["moves"] == n and run.summary["up"] == 0, run


def copyuid_targets(run):
    """Destination UIDs named by COPYUID in the trace (servers with UIDPLUS)."""
    out = []
    for m in re.finditer(r"COPYUID \d+ [\d:,]+ ([\d:,]+)\]", run.err):
        for part in m.group(1).split(","):
            lo, _, hi = part.partition(":")
            out += range(int(lo), int(hi or lo) + 1)
    return out


def has_move(profile):
    return profile != "imap4rev1"


def test_move_rename(acct, capability_profile):
    """Files renamed into another folder (an existing one, and one the reader created in
    the same step) are moved on the server with their bytes and flags; the local files
    keep their names."""
    uids = seeded(acct, {"mv-archive": (message("mv-archive"), ("\\Seen", "\\Flagged")),
                         "mv-new-folder": (message("mv-new-folder"), ()),
                         "mv-no-msgid": (message("mv-no-msgid", msgid=False), ("\\Seen",)),
                         "stay": (message("stay"), ("\\Seen",))})
    originals = acct.server_by_subject()
    local = acct.local_by_subject()
    moved = {("Archive", "mv-archive"): move_file(acct, local["mv-archive"], "Archive"),
             ("Projects", "mv-new-folder"): move_file(acct, local["mv-new-folder"], "Projects"),
             ("Projects", "mv-no-msgid"): move_file(acct, local["mv-no-msgid"], "Projects")}

    run = acct.once()
    assert_moved_on_server(run, 3, has_move(capability_profile))
    assert [subject(m.raw) for m in acct.server()] == ["stay"]
    assert acct.server_by_subject()["stay"].uid == uids["stay"]
    for folder in ("Archive", "Projects"):
        got = acct.server_by_subject(folder)
        assert sorted(got) == sorted(t for f, t in moved if f == folder), folder
        for tag, m in got.items():
            assert m.raw == originals[tag].raw
            assert m.flags == originals[tag].flags
            assert m.internaldate == originals[tag].internaldate
        assert sorted(m.path for m in acct.local(folder)) == \
            sorted(p for (f, _), p in moved.items() if f == folder)
        acct.assert_synced(folder)
    if capability_profile in ("full", "gmail", "o365"):  # UIDPLUS: the UIDs come from COPYUID
        moved = {m.uid for f in ("Archive", "Projects") for m in acct.server(f)}
        assert moved <= set(copyuid_targets(run)), run
    acct.assert_synced()

    again = acct.once()
    s = again.summary
    assert (s["up"], s["down"], s["moves"], s["deletes"], s["flags"]) == (0, 0, 0, 0, 0), again


def neomutt_save(raw):
    """What neomutt writes when it saves a message to another folder: Status and X-Status
    dropped, Content-Length (of the body) added at the end of the header."""
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = [ln for ln in head.split(b"\r\n")
             if not ln.lower().startswith((b"status:", b"x-status:"))]
    lines.append(b"Content-Length: %d" % len(body.replace(b"\r\n", b"\n")))
    return b"\n".join(lines) + b"\n\n" + body.replace(b"\r\n", b"\n")


def test_move_neomutt_save(acct, capability_profile):
    """neomutt's save: a rewritten copy appears in the destination and the original goes.
    Matched by Message-ID and body hash, it is one move on the server (the server keeps its
    own bytes); the rewritten local file is left alone, and nothing travels afterwards."""
    raw = message("saved", headers=("Status: RO", "X-Status: A"))
    seeded(acct, {"saved": (raw, ("\\Seen", "\\Answered")), "other": (message("other"), ())})
    original = acct.server_by_subject()["saved"]
    src = acct.local_by_subject()["saved"]
    rewritten = neomutt_save(src.raw)
    assert message_id_of(rewritten) == message_id_of(src.raw) and rewritten != crlf(src.raw)
    dest = acct.write_local(rewritten, folder="Archive", flags="RS", mtime=src.mtime)
    os.unlink(src.path)

    run = acct.once()
    assert_moved_on_server(run, 1, has_move(capability_profile))
    got = acct.server("Archive")
    assert len(got) == 1 and got[0].raw == original.raw
    assert body_of(got[0].raw) == body_of(rewritten)
    assert got[0].flags == {"\\Seen", "\\Answered"}
    assert [subject(m.raw) for m in acct.server()] == ["other"]
    assert [m.path for m in acct.local("Archive")] == [dest]
    assert dest.read_bytes() == rewritten

    again = acct.once()
    s = again.summary
    assert (s["up"], s["down"], s["moves"], s["deletes"], s["flags"]) == (0, 0, 0, 0, 0), again
    assert len(acct.server("Archive")) == 1 and [m.path for m in acct.local("Archive")] == [dest]


def message_id_of(raw):
    m = re.search(rb"^Message-ID: (\S+)", raw, re.M)
    return m and m.group(1)


def test_move_while_flagged_remotely(acct, capability_profile):
    """Moved locally (one also with a flag added in the same rename) while the server
    flagged the original: the moved copy keeps the server's flag and gets the local one,
    on both sides."""
    uids = seeded(acct, {"flagged-there": (message("flagged-there"), ("\\Seen",)),
                         "changed-here": (message("changed-here"), ("\\Seen",))})
    local = acct.local_by_subject()
    move_file(acct, local["flagged-there"], "Archive")
    move_file(acct, local["changed-here"], "Archive", flags="RS")
    acct.set_flags(uids["flagged-there"], "\\Flagged")
    acct.set_flags(uids["changed-here"], "$Forwarded")

    run = acct.once()
    assert_moved_on_server(run, 2, has_move(capability_profile))
    acct.once()  # a change that arrived with the move may take the next look at the folder
    pairs = acct.assert_synced("Archive")
    assert pairs["flagged-there"][0].flags == imap_flags("FS")
    assert pairs["changed-here"][0].flags == imap_flags("PRS")
    assert acct.server() == [] and acct.local() == []


def test_move_in_two_syncs(acct):
    """neomutt writes the copy when the user saves and removes the original only at its
    next mailbox sync: a sync in between sees a new message, the next one a delete. No
    message is lost or doubled on either side."""
    seeded(acct, {"slow": (message("slow"), ("\\Seen",))})
    src = acct.local_by_subject()["slow"]
    acct.write_local(neomutt_save(src.raw), folder="Archive", flags="S", mtime=src.mtime)
    acct.once()
    os.unlink(src.path)
    acct.once()
    assert acct.server() == [] and acct.local() == []
    got = acct.server("Archive")
    assert [subject(m.raw) for m in got] == ["slow"] and len(acct.local("Archive")) == 1


@pytest.fixture
def acl_server(mailserver_factory, capability_profile, monkeypatch):
    return start_acl_server(mailserver_factory, monkeypatch, capability_profile,
                            {"frank": "frank-pw-1"})


def test_move_refused_keeps_original(acl_server, tmp_path):
    """The destination refuses the message (here: no insert right): the original stays in
    the source folder on the server, unflagged (without MOVE, \\Deleted and EXPUNGE wait for
    the COPY to succeed), the moved file stays where the reader put it, the sync exits 1;
    once the folder takes mail again the move completes, and nothing is doubled."""
    srv = acl_server
    acct = Account(srv, MfEnv(tmp_path, srv), "frank")
    seeded(acct, {"refused": (message("refused"), ("\\Seen",)), "stay": (message("stay"), ())})
    set_acl(srv, "frank", "Archive", "lrwstekxa")  # everything but "i" (insert)
    moved = move_file(acct, acct.local_by_subject()["refused"], "Archive")

    run = acct.once(rc=1)
    assert any("INBOX" in ln and "Archive" in ln for ln in run.err.splitlines()
               if "error" in ln), run
    assert sorted(subject(m.raw) for m in acct.server()) == ["refused", "stay"], run
    assert all("\\Deleted" not in m.flags for m in acct.server())
    assert acct.server("Archive") == []
    assert [m.path for m in acct.local("Archive")] == [moved]
    assert [m.subject for m in acct.local()] == ["stay"]

    set_acl(srv, "frank", "Archive", None)
    acct.once()
    acct.once()
    assert [subject(m.raw) for m in acct.server()] == ["stay"]
    assert [subject(m.raw) for m in acct.server("Archive")] == ["refused"]
    acct.assert_synced()
    acct.assert_synced("Archive")


def test_move_source_refuses(acl_server, tmp_path, capability_profile):
    """The source folder refuses to let the original go (here: no right to delete it): the
    MOVE fails, and the moved file is not uploaded meanwhile (the destination waits with the
    source), so once the folder lets go there is exactly one copy on each side. Without
    MOVE the server takes the COPY and quietly ignores the \\Deleted (RFC 4314): the message
    is then in both folders on the server, and so in both Maildirs."""
    srv = acl_server
    acct = Account(srv, MfEnv(tmp_path, srv), "frank")
    seeded(acct, {"stuck": (message("stuck"), ("\\Seen",)), "stay": (message("stay"), ())})
    set_acl(srv, "frank", "INBOX", "lrwsi")  # no "t" (\\Deleted), no "e" (expunge)
    moved = move_file(acct, acct.local_by_subject()["stuck"], "Archive")

    has_move = capability_profile != "imap4rev1"
    run = acct.once(rc=1 if has_move else 0)
    if has_move:
        assert any("INBOX" in ln and "Archive" in ln for ln in run.err.splitlines()
                   if "error" in ln), run
        assert run.count("APPEND") == 0, run
        assert sorted(subject(m.raw) for m in acct.server()) == ["stay", "stuck"]
        assert acct.server("Archive") == []
    assert [m.path for m in acct.local("Archive")] == [moved]
    set_acl(srv, "frank", "INBOX", None)
    acct.once()
    acct.once()
    inbox = ["stay"] if has_move else ["stay", "stuck"]
    assert sorted(subject(m.raw) for m in acct.server()) == inbox
    assert [subject(m.raw) for m in acct.server("Archive")] == ["stuck"]
    acct.assert_synced()
    acct.assert_synced("Archive")
