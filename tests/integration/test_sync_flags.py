"""docs/SYNC.md rule 9 against the real Dovecot, under every capability profile: D F P R S T
in Maildir names are \\Draft \\Flagged $Forwarded \\Answered \\Seen \\Deleted on the server;
a change on one side reaches the other; changes on both sides merge flag by flag; a flag the
server cannot store stays local."""

import datetime
import os

import pytest

from conftest import MfEnv
from sync_helpers import (CORE_PROFILES, Account, acct, imap_flags, letters, message,  # noqa: F401
                          set_acl, start_acl_server, sync_module)

pytestmark = sync_module(profiles=CORE_PROFILES)

OLD = datetime.datetime(2024, 2, 29, 23, 59, 58, tzinfo=datetime.timezone.utc)


def seeded(acct, cases):
    """Delivers one message per case (subject: initial server flags), syncs, and returns
    {subject: uid}; both sides then agree."""
    uids = {tag: acct.deliver(message(tag), flags=flags, date=OLD) for tag, flags in cases}
    acct.once()
    acct.assert_synced()
    return uids


def bases(acct):
    return {m.subject: m.base for m in acct.local()}


def test_flags_server_to_local(acct):
    """Flags set and cleared on the server rename the file (same base, same bytes): into
    cur/ when it becomes \\Seen, back to new/ when it is unseen again."""
    uids = seeded(acct, [("to-seen", ()), ("to-many", ()), ("to-none", ("\\Seen", "\\Flagged")),
                         ("to-deleted", ("\\Seen",)), ("untouched", ("\\Answered",))])
    before = bases(acct)
    raws = {m.subject: m.raw for m in acct.local()}
    acct.set_flags(uids["to-seen"], "\\Seen")
    acct.set_flags(uids["to-many"], ["\\Flagged", "$Forwarded", "\\Answered", "\\Draft"])
    acct.clear_flags(uids["to-none"], ["\\Seen", "\\Flagged"])
    acct.set_flags(uids["to-deleted"], "\\Deleted")

    run = acct.once()
    assert run.summary["flags"] == 4 and run.summary["down"] == 0, run
    assert run.count("UID STORE") == 0, run  # nothing goes back up
    pairs = acct.assert_synced()
    local = {t: p[1] for t, p in pairs.items()}
    assert (local["to-seen"].sub, local["to-seen"].flags) == ("cur", "S")
    assert (local["to-many"].sub, local["to-many"].flags) == ("new", "DFPR")
    assert (local["to-none"].sub, local["to-none"].info) == ("new", False)
    assert local["to-deleted"].flags == "ST"  # \Deleted is a flag, not an expunge
    assert local["untouched"].flags == "R"
    assert bases(acct) == before
    assert all(m.raw == raws[m.subject] for m in acct.local())
    assert pairs["to-deleted"][0].uid == uids["to-deleted"]

    again = acct.once()
    assert again.summary["flags"] == 0, again


def test_flags_local_to_server(acct):
    """A reader's renames reach the server as flag changes; the bytes never travel."""
    uids = seeded(acct, [("read", ()), ("all", ()), ("cleared", ("\\Seen", "\\Answered")),
                         ("unread", ("\\Seen",)), ("trashed", ("\\Seen",))])
    local = acct.local_by_subject()
    acct.rename_flags(local["read"], "S", sub="cur")
    acct.rename_flags(local["all"], "DFPRS", sub="cur")
    acct.rename_flags(local["cleared"], "")  # stays in cur/ as "...:2,"
    # neomutt marking a message unread: back to new/ without an info part.
    os.rename(local["unread"].path, acct.path() / "new" / local["unread"].base)
    acct.rename_flags(local["trashed"], "ST")

    run = acct.once()
    assert run.summary["flags"] == 5, run
    assert run.count("UID STORE") >= 1 and "BODY.PEEK[]" not in run.err, run
    assert run.count("APPEND") == 0, run
    server = {m.uid: m for m in acct.server()}
    assert server[uids["read"]].flags == {"\\Seen"}
    assert server[uids["all"]].flags == imap_flags("DFPRS")
    assert server[uids["cleared"]].flags == set()
    assert server[uids["unread"]].flags == set()
    assert server[uids["trashed"]].flags == {"\\Seen", "\\Deleted"}  # flagged, not expunged
    assert len(server) == 5
    for tag, m in acct.local_by_subject().items():
        assert m.flags == letters(server[uids[tag]].flags), tag

    again = acct.once()
    assert again.summary["flags"] == 0 and again.count("UID STORE") == 0, again


# (subject, flags at the last sync, Maildir now, server now, both sides after the sync)
CONFLICTS = [
    ("disjoint", "S", "FS", "RS", "FRS"),        # each side added its own flag
    ("add-vs-remove", "S", "F", "RS", "FR"),     # local -S +F, server +R
    ("same-add", "", "F", "F", "F"),             # both added \Flagged
    ("same-remove", "FS", "S", "S", "S"),        # both removed \Flagged
    ("remove-vs-keep", "FRS", "RS", "DFRS", "DRS"),  # local -F, server +D
    ("keep-vs-remove", "DS", "DS", "D", "D"),    # server -S only
    ("everything", "", "DFP", "RST", "DFPRST"),
]


def test_flags_both_sides(acct):
    """Flags changed on both sides since the last sync merge flag by flag: each side's
    change wins over no change, the same change on both sides is no conflict."""
    uids = seeded(acct, [(t, sorted(imap_flags(base))) for t, base, *_ in CONFLICTS])
    local = acct.local_by_subject()
    for tag, base, loc, srv, _ in CONFLICTS:
        acct.rename_flags(local[tag], loc, sub="cur" if "S" in loc else "new")
        add, drop = imap_flags(srv) - imap_flags(base), imap_flags(base) - imap_flags(srv)
        if add:
            acct.set_flags(uids[tag], sorted(add))
        if drop:
            acct.clear_flags(uids[tag], sorted(drop))

    acct.once()
    pairs = acct.assert_synced()
    got = {tag: pairs[tag][1].flags for tag, *_ in CONFLICTS}
    assert got == {tag: want for tag, *_, want in CONFLICTS}
    assert {t: pairs[t][0].uid for t in uids} == uids

    again = acct.once()
    assert again.summary["flags"] == 0 and again.count("UID STORE") == 0, again
    assert {m.subject: m.flags for m in acct.local()} == got


# ----- flags the server cannot store --------------------------------------------------------

@pytest.fixture
def acl_server(mailserver_factory, capability_profile, monkeypatch):
    return start_acl_server(mailserver_factory, monkeypatch, capability_profile,
                            {"carol": "carol-pw-1"})


def test_unstorable_flag_stays_local(acl_server, tmp_path):
    """A folder whose PERMANENTFLAGS are (\\Seen \\Deleted): F and P set locally stay in the
    file name (not pushed, not taken away), \\Seen still syncs both ways."""
    srv = acl_server
    set_acl(srv, "carol", "INBOX", "lrstie")  # no "w": only \Seen and \Deleted may be stored
    acct = Account(srv, MfEnv(tmp_path, srv), "carol")
    uid = acct.deliver(message("limited"), date=OLD)
    with srv.imap("carol") as c:
        c.select("INBOX")
        assert c.untagged_responses["PERMANENTFLAGS"] == [b"(\\Deleted \\Seen)"]
    acct.once()
    m = acct.local()[0]
    acct.rename_flags(m, "FPS", sub="cur")

    run = acct.once()
    assert run.rc == 0 and "Flagged" not in " ".join(run.commands()), run
    assert acct.server()[0].flags == {"\\Seen"}
    assert acct.local()[0].flags == "FPS"
    # The server's own change still arrives, and the local-only flags survive it.
    acct.clear_flags(uid, "\\Seen")
    run = acct.once()
    assert acct.server()[0].flags == set()
    local = acct.local()[0]
    assert (local.flags, local.sub) == ("FP", "new"), run
    again = acct.once()
    assert again.summary["flags"] == 0 and again.count("UID STORE") == 0, again
    assert acct.local()[0].flags == "FP"
