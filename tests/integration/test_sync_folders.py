"""docs/SYNC.md rules 1, 2, 3, 5 and 6 against the real Dovecot: which Maildir each server
folder gets (verbatim and maildir++ layouts, UTF-8 names), folder patterns, special-use
names, folders created on either side, and folders removed on either side. The folder list
depends on LIST, LIST-EXTENDED, LIST-STATUS and SPECIAL-USE, so the tests run with
Dovecot's full capabilities and with bare IMAP4rev1."""

import datetime
import os
import shutil

import pytest

from conftest import MfEnv
from harness import configs
from sync_helpers import (Account, acct, is_maildir, local_messages, message, subject,  # noqa: F401
                          sync_module)

pytestmark = sync_module(profiles=["full", "imap4rev1"])

OLD = datetime.datetime(2020, 2, 2, 2, 2, 2, tzinfo=datetime.timezone.utc)


def maildirs(root):
    """Relative paths of the Maildirs under root ("" for root itself)."""
    out = set()
    for dirpath, dirnames, _ in os.walk(root):
        if is_maildir(dirpath):
            out.add(os.path.relpath(dirpath, root))
        dirnames[:] = [d for d in dirnames if d not in ("cur", "new", "tmp")]
    return {"" if p == "." else p for p in out}


def raw_list_names(srv, user):
    """The folder names exactly as the server sends them in LIST (modified UTF-7)."""
    with srv.imap(user) as c:
        typ, data = c.list('""', '"*"')
    out = set()
    for item in data:
        line = item[0] + item[1] if isinstance(item, tuple) else item
        out.add(line.decode().rsplit(' "/" ', 1)[1].strip('"'))
    return out


# ----- rule 1 -----------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["verbatim", "maildir++"])
def test_layouts(acct, layout):
    """Every selected server folder is a Maildir, also when empty: verbatim nests them
    (INBOX/, Lists/rust/), maildir++ makes the root INBOX and Lists/rust .Lists.rust/; a
    dot in a name is escaped in maildir++. Folders made locally in that layout reach the
    server under the right names."""
    acct.config(layout=layout)
    for name in ("Lists/rust", "Lists/perl", "Empty", "v1.2"):
        acct.create_folder(name)
    acct.deliver(message("in-inbox"), date=OLD)
    acct.deliver(message("in-rust"), folder="Lists/rust", date=OLD)
    acct.deliver(message("in-dotted"), folder="v1.2", date=OLD)
    acct.once()

    plus = layout == "maildir++"
    where = {"INBOX": "" if plus else "INBOX",
             "Lists/rust": ".Lists.rust" if plus else "Lists/rust",
             "Lists/perl": ".Lists.perl" if plus else "Lists/perl",
             "Empty": ".Empty" if plus else "Empty",
             "v1.2": ".v1%2E2" if plus else "v1.2",
             "Trash": ".Trash" if plus else "Trash"}
    found = maildirs(acct.root)
    assert set(where.values()) <= found, found
    assert "Lists" not in found and ".Lists" not in found  # \Noselect parent: no Maildir
    for folder, rel in where.items():
        assert sorted(m.subject for m in local_messages(acct.root / rel)) == \
            sorted(subject(m.raw) for m in acct.server(folder)), folder

    # Made locally, in the layout's own form.
    new = acct.root / (".Lists.go" if plus else "Lists/go")
    for s in ("cur", "new", "tmp"):
        (new / s).mkdir(parents=True)
    acct.write_local(message("in-go", eol="\n"), folder=os.path.relpath(new, acct.root),
                     mtime=OLD)
    acct.once()
    assert "Lists/go" in acct.server_folders()
    assert [subject(m.raw) for m in acct.server("Lists/go")] == ["in-go"]


def test_non_ascii_names(acct):
    """Folder names are UTF-8 on disk and modified UTF-7 on the wire, both ways."""
    for name in ("Entwürfe", "日本語", "Reisen/Übersicht", "Café & Bar"):
        acct.create_folder(name)
        acct.deliver(message(f"in-{name}"), folder=name, date=OLD)
    acct.once()
    for name in ("Entwürfe", "日本語", "Reisen/Übersicht", "Café & Bar"):
        assert is_maildir(acct.path(name)), name
        acct.assert_synced(name)
    assert "Entw&APw-rfe" in raw_list_names(acct.srv, acct.user)

    # Created locally with non-ASCII names: CREATE in modified UTF-7.
    for name in ("Ablage/Überfällig", "Русский"):
        acct.write_local(message(f"up-{name}", eol="\n"), folder=name, mtime=OLD)
    run = acct.once()
    wire = raw_list_names(acct.srv, acct.user)
    assert "Ablage/&ANw-berf&AOQ-llig" in wire and "&BCAEQwRBBEEEOgQ4BDk-" in wire, wire
    for name in ("Ablage/Überfällig", "Русский"):
        acct.assert_synced(name)
    assert "CREATE Ablage/&ANw-berf&AOQ-llig" in run.err or \
        'CREATE "Ablage/&ANw-berf&AOQ-llig"' in run.err, run


# ----- rule 2 -----------------------------------------------------------------------------

def test_patterns(acct):
    """folders = ["Lists/*", "!Lists/p*", "Lists/python", "%/New", "Work/Old/*", "inbox"]:
    the last pattern that matches a name decides (Lists/python is back in); % stops at the
    delimiter (Work/Deep/New is out); a name no pattern matches is out (the special-use
    folders too); INBOX matches in any case. Excluded folders get no Maildir, and Maildirs
    made locally under excluded names are not created on the server."""
    acct.config(imap={"folders": ["Lists/*", "!Lists/p*", "Lists/python", "%/New",
                                  "Work/Old/*", "inbox"]})
    names = ("Lists/rust", "Lists/perl", "Lists/python", "Work/Old", "Work/Old/Deep",
             "Work/New", "Work/Deep/New")
    for name in names:
        acct.create_folder(name)
        acct.deliver(message(f"in-{name}"), folder=name, date=OLD)
    acct.deliver(message("in-inbox"), date=OLD)
    acct.write_local(message("local-excluded", eol="\n"), folder="Lists/pascal", mtime=OLD)
    acct.write_local(message("local-unmatched", eol="\n"), folder="Other", mtime=OLD)
    acct.once()

    synced = {"INBOX", "Lists/rust", "Lists/python", "Work/Old/Deep", "Work/New"}
    for name in synced:
        acct.assert_synced(name)
    for name in {"Lists/perl", "Work/Old", "Work/Deep/New", "Sent", "Trash"}:
        assert not is_maildir(acct.path(name)), name
    assert not {"Lists/pascal", "Other"} & set(acct.server_folders())


# ----- rule 3 -----------------------------------------------------------------------------

RENAMED_SPECIAL_USE = (("Gesendet", "\\Sent"), ("Entwuerfe", "\\Drafts"),
                       ("Spam", "\\Junk"), ("Papierkorb", "\\Trash"), ("Ablage", "\\Archive"))


@pytest.fixture
def german_server(mailserver_factory, capability_profile, monkeypatch):
    """A Dovecot whose special-use folders have other names than the local ones."""
    monkeypatch.setattr(configs, "SPECIAL_USE_FOLDERS", RENAMED_SPECIAL_USE)
    srv = mailserver_factory(capabilities=capability_profile, users={"dora": "dora-pw-1"})
    srv.doveadm("mailbox", "create", "-u", "dora", *(n for n, _ in RENAMED_SPECIAL_USE))
    return srv


@pytest.mark.parametrize("enabled", [True, False])
def test_special_use_names(german_server, tmp_path, enabled):
    """special_use_names = true: \\Sent \\Drafts \\Junk \\Trash \\Archive are Sent, Drafts,
    Junk, Trash, Archive locally, both ways; false: the server's names."""
    acct = Account(german_server, MfEnv(tmp_path, german_server), "dora")
    acct.config(special_use_names=enabled)
    acct.deliver(message("sent-mail"), folder="Gesendet", date=OLD, flags=("\\Seen",))
    acct.deliver(message("spam-mail"), folder="Spam", date=OLD)
    acct.once()

    names = dict(RENAMED_SPECIAL_USE)
    local = {"\\Sent": "Sent", "\\Drafts": "Drafts", "\\Junk": "Junk", "\\Trash": "Trash",
             "\\Archive": "Archive"}
    for server_name, use in RENAMED_SPECIAL_USE:
        here = local[use] if enabled else server_name
        gone = server_name if enabled else local[use]
        assert is_maildir(acct.path(here)), here
        assert not acct.path(gone).exists(), gone
    sent = "Sent" if enabled else "Gesendet"
    assert [m.subject for m in acct.local(sent)] == ["sent-mail"]
    assert [m.subject for m in acct.local("Junk" if enabled else "Spam")] == ["spam-mail"]

    # A draft written locally lands in the server's \Drafts folder.
    acct.write_local(message("my-draft", eol="\n"), folder="Drafts" if enabled else "Entwuerfe",
                     flags="DS", mtime=OLD)
    acct.once()
    assert [subject(m.raw) for m in acct.server("Entwuerfe")] == ["my-draft"]
    assert set(acct.server_folders()) >= set(names)
    assert ("Drafts" in acct.server_folders()) is False
    acct.assert_synced("Gesendet", local_folder=sent)


# ----- rule 5 -----------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["both", "local", "remote", "none"])
def test_create_both_ways(acct, policy):
    """create_folders: a new server folder gets a Maildir (both, local), a new Maildir
    becomes a server folder (both, remote); otherwise it is skipped with a warning and
    nothing is created. Existing pairs sync under every policy."""
    acct.config(imap={"create_folders": policy})
    acct.create_folder("FromServer")
    acct.deliver(message("server-side"), folder="FromServer", date=OLD)
    acct.write_local(message("local-side", eol="\n"), folder="FromHere/Sub", mtime=OLD)
    empty = acct.path("EmptyHere")
    for s in ("cur", "new", "tmp"):
        (empty / s).mkdir(parents=True)
    acct.deliver(message("inbox"), date=OLD)
    acct.write_local(message("inbox-up", eol="\n"), mtime=OLD)

    run = acct.once()
    local_ok, remote_ok = policy in ("both", "local"), policy in ("both", "remote")
    assert is_maildir(acct.path("FromServer")) == local_ok
    if local_ok:
        acct.assert_synced("FromServer")
    else:
        assert "FromServer" in run.err and "create_folders" in run.err, run
    folders = acct.server_folders()
    assert ("FromHere/Sub" in folders) == remote_ok and ("EmptyHere" in folders) == remote_ok
    if remote_ok:
        acct.assert_synced("FromHere/Sub")
        assert acct.server("EmptyHere") == []
    else:
        assert "FromHere/Sub" in run.err and "create_folders" in run.err, run
        assert [m.subject for m in acct.local("FromHere/Sub")] == ["local-side"]
    acct.assert_synced()
    assert run.rc == 0


# ----- rule 6 -----------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["none", "local", "both"])
def test_removed_folders(acct, policy):
    """A folder deleted on the server: its Maildir and mail stay, a warning says so, every
    time (remove_folders = none) or once (local, both); the folder is not created on the
    server again. A Maildir deleted locally is fetched again: its mail stays on the server
    whatever remove_folders says."""
    acct.config(imap={"remove_folders": policy})
    for name in ("Doomed", "Dropped"):
        acct.create_folder(name)
        acct.deliver(message(f"in-{name}"), folder=name, date=OLD)
    acct.once()
    kept = {m.path.name for m in acct.local("Doomed")}

    acct.srv.delete_folder(acct.user, "Doomed")
    run = acct.once()
    assert "Doomed" in run.err and "kept" in run.err, run
    assert {m.path.name for m in acct.local("Doomed")} == kept
    again = acct.once()
    assert {m.path.name for m in acct.local("Doomed")} == kept
    assert "Doomed" not in acct.server_folders(), again
    assert ("Doomed" in again.err) == (policy == "none"), again

    shutil.rmtree(acct.path("Dropped"))
    run = acct.once()
    assert "Dropped" in acct.server_folders()
    assert [subject(m.raw) for m in acct.server("Dropped")] == ["in-Dropped"]
    acct.assert_synced("Dropped")
    assert run.summary["deletes"] == 0, run
