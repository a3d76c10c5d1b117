"""docs/SYNC.md rules 10 and 14 against the real Dovecot, under every capability profile:
deletes both ways, delete = "trash", a delete winning over a flag change on the other side,
and the mass-deletion guard."""

import datetime
import os

import pytest

from conftest import MfEnv
from sync_helpers import (CORE_PROFILES, Account, acct, message, set_acl,  # noqa: F401
                          start_acl_server, subject, sync_module)

pytestmark = sync_module(profiles=CORE_PROFILES)

OLD = datetime.datetime(2022, 12, 31, 12, 0, 0, tzinfo=datetime.timezone.utc)


def seeded(acct, tags, folder="INBOX", flags=()):
    uids = {t: acct.deliver(message(t), folder=folder, flags=flags, date=OLD) for t in tags}
    acct.once()
    acct.assert_synced(folder)
    return uids


def test_delete_local_to_server(acct):
    """A file removed from the Maildir is expunged on the server (gone, not only \\Deleted);
    the other messages and files stay as they are."""
    uids = seeded(acct, ["keep1", "gone1", "keep2", "gone2"])
    local = acct.local_by_subject()
    os.unlink(local["gone1"].path)
    os.unlink(local["gone2"].path)
    kept = sorted(m.path.name for m in acct.local())

    run = acct.once()
    assert run.summary["deletes"] == 2, run
    assert sorted(m.uid for m in acct.server()) == sorted([uids["keep1"], uids["keep2"]])
    assert acct.srv.status(acct.user)["MESSAGES"] == 2
    assert sorted(m.path.name for m in acct.local()) == kept
    acct.assert_synced()
    assert acct.once().summary["deletes"] == 0


def test_delete_server_to_local(acct):
    """A message expunged on the server is removed from the Maildir; in new/ or in cur/."""
    uids = seeded(acct, ["keep", "gone-new", "gone-cur"])
    acct.set_flags(uids["gone-cur"], "\\Seen")
    acct.once()
    assert acct.local_by_subject()["gone-cur"].sub == "cur"
    acct.expunge([uids["gone-new"], uids["gone-cur"]])

    run = acct.once()
    assert run.summary["deletes"] == 2 and run.summary["down"] == 0, run
    assert [m.subject for m in acct.local()] == ["keep"]
    acct.assert_synced()
    assert acct.once().summary["deletes"] == 0


def test_delete_wins_over_flag(acct):
    """Deleted on one side, flagged on the other: the delete wins, both directions."""
    uids = seeded(acct, ["local-del", "server-del", "bystander"])
    local = acct.local_by_subject()
    os.unlink(local["local-del"].path)
    acct.set_flags(uids["local-del"], ["\\Flagged", "\\Seen"])
    acct.expunge(uids["server-del"])
    acct.rename_flags(local["server-del"], "FS", sub="cur")

    run = acct.once()
    assert run.count("APPEND") == 0 and "BODY.PEEK[]" not in run.err, run
    assert [subject(m.raw) for m in acct.server()] == ["bystander"]
    assert [m.subject for m in acct.local()] == ["bystander"]
    acct.assert_synced()
    again = acct.once()
    assert (again.summary["up"], again.summary["down"]) == (0, 0), again


def test_delete_to_trash(acct):
    """With delete = "trash" a local delete moves the server's copy to the \\Trash folder
    (same bytes, flags kept); the copy reaches the local Trash Maildir; a delete inside
    Trash expunges."""
    acct.config(imap={"delete": "trash"})
    uids = seeded(acct, ["trash-me", "keep"], flags=("\\Seen",))
    acct.set_flags(uids["trash-me"], "\\Answered")
    acct.once()
    original = acct.server_by_subject()["trash-me"]
    os.unlink(acct.local_by_subject()["trash-me"].path)

    run = acct.once()
    assert run.count("APPEND") == 0, run
    assert [subject(m.raw) for m in acct.server()] == ["keep"]
    trash = acct.server("Trash")
    assert [subject(m.raw) for m in trash] == ["trash-me"]
    assert trash[0].raw == original.raw
    assert trash[0].flags == {"\\Seen", "\\Answered"}
    acct.once()  # the Trash folder's job may have run before INBOX's in that pass
    acct.assert_synced()
    acct.assert_synced("Trash")

    os.unlink(acct.local("Trash")[0].path)
    acct.once()
    assert acct.server("Trash") == []
    assert acct.local("Trash") == []
    assert acct.server_folders().keys() >= {"Trash"}


@pytest.fixture
def acl_server(mailserver_factory, capability_profile, monkeypatch):
    return start_acl_server(mailserver_factory, monkeypatch, capability_profile,
                            {"erin": "erin-pw-1"})


def test_trash_refused_keeps_message(acl_server, tmp_path):
    """delete = "trash" and the \\Trash folder refuses the copy (here: no insert right): the
    message is not expunged (without MOVE the COPY, the \\Deleted and the EXPUNGE are three
    commands), the sync says so and exits 1, and a later sync, once Trash takes mail again,
    finishes the delete."""
    srv = acl_server
    acct = Account(srv, MfEnv(tmp_path, srv), "erin")
    acct.config(imap={"delete": "trash"})
    acct.deliver(message("precious"), date=OLD)
    acct.deliver(message("other"), date=OLD)
    acct.once()
    set_acl(srv, "erin", "Trash", "lrwstekxa")  # everything but "i" (insert)
    os.unlink(acct.local_by_subject()["precious"].path)

    run = acct.once(rc=1)
    assert "INBOX" in run.err, run
    assert sorted(subject(m.raw) for m in acct.server()) == ["other", "precious"]
    assert [m.flags for m in acct.server() if subject(m.raw) == "precious"] == [set()]
    assert acct.server("Trash") == []

    set_acl(srv, "erin", "Trash", None)
    acct.once()
    acct.once()
    assert [subject(m.raw) for m in acct.server()] == ["other"]
    assert [subject(m.raw) for m in acct.server("Trash")] == ["precious"]
    acct.assert_synced()
    acct.assert_synced("Trash")


# ----- rule 14 ---------------------------------------------------------------------------------

def test_mass_delete_guard(acct):
    """An emptied Maildir of 30 messages deletes nothing on the server, exits 1 and says
    which folder and how to go ahead; --allow-mass-delete goes ahead. A folder of 20 is not
    guarded; nor is a share of exactly half. The same guard holds for the server side."""
    acct.create_folder("Big")
    acct.create_folder("Small")
    acct.create_folder("Half")
    acct.create_folder("Remote")
    for folder, n in (("Big", 30), ("Small", 20), ("Half", 30), ("Remote", 30)):
        acct.srv.seed(acct.user, folder, [(message(f"{folder}-{i}"), (), OLD) for i in range(n)])
    acct.once()
    for folder in ("Big", "Small", "Half", "Remote"):
        acct.assert_synced(folder)

    for m in acct.local("Big") + acct.local("Small"):
        os.unlink(m.path)
    for m in acct.local("Half")[:15]:
        os.unlink(m.path)
    remote = acct.server("Remote", body=False)
    acct.expunge([m.uid for m in remote[:16]], folder="Remote")
    # Everything else still syncs, in the guarded folders too.
    acct.deliver(message("Big-new"), folder="Big", date=OLD)
    acct.deliver(message("inbox-new"), date=OLD)
    acct.write_local(message("Remote-up", eol="\n"), folder="Remote", mtime=OLD)

    run = acct.once(rc=1)
    lines = [ln for ln in run.err.splitlines() if "--allow-mass-delete" in ln]
    assert any("Big" in ln and "30" in ln for ln in lines), run
    assert any("Remote" in ln and "16" in ln for ln in lines), run
    assert not any("Small" in ln or "Half" in ln for ln in lines), run
    assert acct.srv.status(acct.user, "Big")["MESSAGES"] == 31  # nothing deleted
    assert acct.srv.status(acct.user, "Small")["MESSAGES"] == 0  # not guarded
    assert acct.srv.status(acct.user, "Half")["MESSAGES"] == 15
    assert len(acct.local("Remote")) == 31
    assert [m.subject for m in acct.local("Big")] == ["Big-new"]
    assert "Remote-up" in acct.server_by_subject("Remote")
    acct.assert_synced()
    acct.assert_synced("Small")
    acct.assert_synced("Half")

    # Held back again by a plain sync: the guard is not a one-time warning.
    again = acct.once(rc=1)
    assert acct.srv.status(acct.user, "Big")["MESSAGES"] == 31, again
    assert len(acct.local("Remote")) == 31

    allowed = acct.once("--allow-mass-delete")
    assert allowed.summary["deletes"] == 30 + 16, allowed
    assert acct.srv.status(acct.user, "Big")["MESSAGES"] == 1
    assert len(acct.local("Remote")) == 15
    for folder in ("Big", "Small", "Half", "Remote"):
        acct.assert_synced(folder)
    assert acct.once().rc == 0
