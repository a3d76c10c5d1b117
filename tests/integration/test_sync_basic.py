"""docs/SYNC.md rules 1, 7, 8, 12, 13 and 18 against the real Dovecot, under every
capability profile: messages new on one side reach the other byte for byte with their flags
and dates, pairs are recognised, a UIDVALIDITY change loses and duplicates nothing, and a
second sync does nothing. Rule 19 (big messages stream) is test_sync_large.py."""

import datetime
import os
import time


from harness.corpus import crlf
from sync_helpers import (CORE_PROFILES, FLAG_CASES, acct, imap_flags, letters,  # noqa: F401
                          message, odd_message, subject, sync_module, tree_snapshot, ts)

pytestmark = sync_module(profiles=CORE_PROFILES)

DAY = 86400
OLD = datetime.datetime(2023, 5, 17, 8, 30, 12, tzinfo=datetime.timezone.utc)


# ----- rule 7 ------------------------------------------------------------------------------------

def test_download(acct):
    """New on the server -> in the Maildir: the server's bytes exactly, mtime = INTERNALDATE,
    new/ while unseen (no info when no flags), cur/ once seen, flags as letters; the server
    is left as it was (no \\Seen from fetching)."""
    cases = FLAG_CASES
    for i, (tag, flags) in enumerate(cases.items()):
        acct.deliver(message(tag), flags=flags, date=ts(OLD) + i * DAY)
    odd = odd_message()
    acct.deliver(odd, date=ts(OLD) - DAY)
    before = {m.uid: m for m in acct.server()}

    run = acct.once()
    assert run.summary["down"] == len(cases) + 1, run
    assert run.summary["up"] == 0 and run.summary["flags"] == 0, run

    pairs = acct.assert_synced()
    for tag, flags in cases.items():
        srv, loc = pairs[tag]
        assert loc.raw == srv.raw  # byte for byte, CRLF as served
        assert loc.flags == letters(flags)
        assert loc.sub == ("cur" if "\\Seen" in flags else "new")
        assert loc.info == bool(flags), f"{loc.path.name}: info part without flags or v.v."
        assert int(loc.mtime) == ts(srv.internaldate)
    assert pairs["odd"][1].raw == crlf(odd)
    assert pairs["odd"][1].sub == "new" and not pairs["odd"][1].info
    after = {m.uid: m for m in acct.server()}
    assert {u: m.flags for u, m in after.items()} == {u: m.flags for u, m in before.items()}
    assert not list((acct.path() / "tmp").iterdir())
    # Every folder of the server is a Maildir, also when empty (rule 1).
    for name in acct.server_folders():
        assert (acct.root / name / "cur").is_dir(), name


# ----- rule 8 ------------------------------------------------------------------------------------

def test_upload(acct):
    """New in the Maildir -> APPENDed with its flags and the file's mtime as INTERNALDATE,
    LF sent as CRLF; the file stays where it is, under its name; nothing comes back down."""
    files = {  # subject: (flags, sub)
        "up-new": ("", "new"),
        "up-cur-unseen": ("", "cur"),
        "up-seen": ("S", "cur"),
        "up-flagged": ("FS", "cur"),
        "up-all": ("DFPRST", "cur"),
        "up-new-flagged": ("F", "new"),
    }
    paths = {}
    for i, (tag, (flags, sub)) in enumerate(files.items()):
        eol = "\n" if i % 2 == 0 else "\r\n"
        paths[tag] = acct.write_local(message(tag, eol=eol), flags=flags, sub=sub,
                                      mtime=ts(OLD) + i * DAY)
    # No Message-ID at all: still uploaded once (found by size without UIDPLUS).
    paths["no-msgid"] = acct.write_local(message("no-msgid", msgid=False, eol="\n"),
                                         flags="S", mtime=ts(OLD))
    names_before = sorted(p.name for p in paths.values())
    raws = {tag: p.read_bytes() for tag, p in paths.items()}

    run = acct.once()
    assert run.summary["up"] == len(paths), run
    assert run.summary["down"] == 0, run
    assert run.count("APPEND") == len(paths), run

    server = acct.server_by_subject()
    assert sorted(server) == sorted(paths)
    for tag, p in paths.items():
        m = server[tag]
        assert m.raw == crlf(raws[tag]), tag
        want = files.get(tag, ("S", None))[0]
        assert m.flags == imap_flags(want), (tag, m.flags)
        assert ts(m.internaldate) == int(os.stat(p).st_mtime), tag
    # The files are untouched: same names, same bytes.
    assert sorted(m.path.name for m in acct.local()) == names_before
    assert all(p.read_bytes() == raws[t] for t, p in paths.items())

    # Nothing is sent twice, and the next sync finds both sides equal.
    again = acct.once()
    assert again.summary["up"] == 0 and again.summary["down"] == 0, again
    assert again.count("APPEND") == 0, again
    assert len(acct.server()) == len(paths)
    assert sorted(m.path.name for m in acct.local()) == names_before


# ----- rule 12 -----------------------------------------------------------------------------------

def test_pairing(acct):
    """The same message new on both sides (same Message-ID and size; without a Message-ID,
    same size and body) is paired, not copied; the flags of both are merged. Same
    Message-ID with another size is two messages."""
    same = message("twin")
    uid = acct.deliver(same, flags=("\\Flagged",), date=OLD)
    acct.write_local(same, flags="RS", mtime=OLD)
    anonymous = message("twin-no-msgid", msgid=False)
    acct.deliver(anonymous, date=OLD)
    acct.write_local(anonymous.replace(b"\r\n", b"\n"), flags="S", mtime=OLD)
    # Same Message-ID, different content: not the same message.
    other = message("cousin-a")
    acct.deliver(other, date=OLD)
    acct.write_local(other.replace(b"Body of", b"Changed body of"), mtime=OLD)

    run = acct.once()
    assert run.count("APPEND") == 1, run  # only the cousin
    server = acct.server()
    twins = [m for m in server if subject(m.raw) == "twin"]
    assert [m.uid for m in twins] == [uid]
    assert twins[0].flags == imap_flags("FRS")
    local = [m for m in acct.local() if m.subject == "twin"]
    assert len(local) == 1 and local[0].flags == "FRS" and local[0].sub == "cur"
    assert len([m for m in server if subject(m.raw) == "cousin-a"]) == 2
    assert len([m for m in acct.local() if m.subject == "cousin-a"]) == 2
    assert [m.flags for m in server if subject(m.raw) == "twin-no-msgid"] == [{"\\Seen"}]
    assert [m.flags for m in acct.local() if m.subject == "twin-no-msgid"] == ["S"]

    again = acct.once()
    assert (again.summary["up"], again.summary["down"], again.summary["flags"]) == (0, 0, 0)


# ----- rule 13 -----------------------------------------------------------------------------------

def recreate_inbox(acct, order):
    """Renumbers INBOX on the server as a restore from backup would: every message
    expunged and APPENDed again (in `order`, keeping flags and dates), then a new
    UIDVALIDITY. Returns the old and the new UIDVALIDITY."""
    old = acct.srv.status(acct.user)["UIDVALIDITY"]
    msgs = acct.server()
    by_subject = {subject(m.raw): m for m in msgs}
    acct.expunge([m.uid for m in msgs])
    for tag in order:
        m = by_subject[tag]
        acct.deliver(m.raw, flags=sorted(m.flags), date=m.internaldate)
    new = old + 1000
    acct.srv.doveadm("mailbox", "update", "-u", acct.user, "--uid-validity", str(new), "INBOX")
    assert acct.srv.status(acct.user)["UIDVALIDITY"] == new
    return old, new


def test_uidvalidity_change(acct):
    """After the server renumbers a folder, messages are matched again by Message-ID and
    size (one without a Message-ID by size and body hash): no local file is deleted or
    renamed, nothing is duplicated, and a flag changed on the server meanwhile arrives."""
    tags = [f"uv{i}" for i in range(6)]
    for i, tag in enumerate(tags):
        acct.deliver(message(tag, msgid=i != 5), flags=("\\Seen",) if i % 2 else (),
                     date=ts(OLD) + i)
    acct.once()
    names = sorted(m.path.name for m in acct.local())
    mtimes = {m.path.name: m.mtime for m in acct.local()}

    old, new = recreate_inbox(acct, list(reversed(tags)))
    acct.set_flags(acct.server_by_subject()["uv0"].uid, "\\Flagged")
    run = acct.once()
    assert f"old={old} new={new}" in run.err, run
    s = run.summary
    assert (s["down"], s["up"], s["deletes"]) == (0, 0, 0), run
    assert run.count("APPEND") == 0 and run.downloads() == 0, run
    # Only the message without a Message-ID is read, for the hash of its body.
    hashed = [c for c in run.commands() if c.endswith("(UID BODY.PEEK[])")]
    assert len(hashed) == 1 and hashed[0] == \
        f"UID FETCH {acct.server_by_subject()['uv5'].uid} (UID BODY.PEEK[])", run
    pairs = acct.assert_synced()
    assert len(pairs) == len(tags)
    assert pairs["uv0"][1].flags == "F"
    local = acct.local()
    assert sorted(m.path.name for m in local if m.subject != "uv0") == \
        sorted(n for n in names if not n.startswith(pairs["uv0"][1].base))
    assert all(m.mtime == mtimes[m.path.name] for m in local if m.path.name in mtimes)

    again = acct.once()
    assert (again.summary["up"], again.summary["down"], again.summary["flags"]) == (0, 0, 0)


# ----- rule 18 -----------------------------------------------------------------------------------

def test_second_sync_changes_nothing(acct, capability_profile):
    """Right after a sync the next one transfers nothing and changes nothing on disk; once
    the Maildir's times are trusted, a server with LIST-STATUS and CONDSTORE costs one LIST
    and no SELECT."""
    for i in range(5):
        acct.deliver(message(f"down{i}"), flags=("\\Seen",) if i % 2 else (), date=OLD)
        acct.write_local(message(f"up{i}", eol="\n"), flags="S" if i % 2 else "", mtime=OLD)
    acct.create_folder("Lists/rust")
    acct.deliver(message("rust"), folder="Lists/rust", date=OLD)
    first = acct.once()
    assert first.summary["down"] == 6 and first.summary["up"] == 5, first
    snap = tree_snapshot(acct.root)
    server = {(m.uid, frozenset(m.flags)) for m in acct.server()}
    time.sleep(0.2)  # the Maildir's times are trusted 100 ms after they moved

    for n in (2, 3):
        run = acct.once()
        s = run.summary
        assert (s["down"], s["up"], s["flags"], s["moves"], s["deletes"]) == (0, 0, 0, 0, 0), run
        assert "BODY.PEEK[" not in run.err and "BODY[]" not in run.err, run
        assert run.count("APPEND") == 0 and run.count("UID STORE") == 0, run
        fetches = [c for c in run.commands() if c.startswith("UID FETCH")]
        assert all(c.endswith("(UID FLAGS)") or "CHANGEDSINCE" in c for c in fetches), run
        assert tree_snapshot(acct.root) == snap, f"sync {n} changed the Maildir"
        assert {(m.uid, frozenset(m.flags)) for m in acct.server()} == server
    if capability_profile in ("full", "gmail"):  # LIST-STATUS and CONDSTORE
        cmds = [c.split()[0] for c in run.commands()]
        assert "SELECT" not in cmds and cmds.count("LIST") == 1, run.commands()
    acct.assert_synced()
    acct.assert_synced("Lists/rust")
