"""What a mailbox holds, on the server and in a tool's Maildir, as comparable sets.

A message is (folder, digest, flags): digest is the SHA-256 of its bytes with CRLF made LF
(Dovecot keeps files as given and serves CRLF; mbsync and offlineimap may store LF,
mailferry stores CRLF as served) and without an X-TUID header (mbsync 1.4 adds one to
every message it copies, to find it again; the corpus has none), flags the Maildir letters of the IMAP system flags
(D F R S T) -- keywords are left out, as not every peer keeps them.
"""

import collections
import dataclasses
import hashlib
import os
import re

SYSTEM_FLAGS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S",
                "\\Deleted": "T"}
FLAG_LETTERS = "DFRST"


@dataclasses.dataclass
class Msg:
    folder: str
    digest: str
    flags: str  # sorted letters out of FLAG_LETTERS
    ref: object  # server: (uid, guid); Maildir: the file's path


TUID = re.compile(rb"^X-TUID: [^\n]*\n", re.MULTILINE)


def normalised(data):
    data = data.replace(b"\r\n", b"\n")
    end = data.find(b"\n\n")
    head = data[:end + 1] if end >= 0 else data
    if b"X-TUID: " in head:
        data = TUID.sub(b"", head, count=1) + data[len(head):]
    return data


class DigestCache:
    """Digests by a file identity that survives renames (flag changes): a file is read
    once however often the state is read again."""

    def __init__(self):
        self._known = {}

    def digest(self, path, key):
        found = self._known.get(key)
        if found is None:
            with open(path, "rb") as f:
                data = f.read()
            found = hashlib.sha256(normalised(data)).hexdigest()
            self._known[key] = found
        return found


def _base(filename):
    return filename.split(":2,", 1)[0]


def _info_flags(filename):
    if ":2," not in filename:
        return ""
    info = filename.split(":2,", 1)[1]
    return "".join(sorted(set(c for c in info if c in FLAG_LETTERS)))


def _files(folder_dir):
    """{base name: path} of the messages in a Maildir folder (cur/ and new/)."""
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(folder_dir, sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for name in names:
            if not name.startswith("."):
                out[_base(name)] = os.path.join(d, name)
    return out


def _uid_files(folder_dir):
    """{UID: path} of a folder in Dovecot's Maildir storage, by its dovecot-uidlist: a
    message moved or copied on the server keeps its GUID under a new file name."""
    files = _files(folder_dir)
    out = {}
    with open(os.path.join(folder_dir, "dovecot-uidlist")) as f:
        next(f)  # the header
        for line in f:
            head, _, name = line.rstrip("\n").partition(" :")
            if _base(name) in files:
                out[int(head.split()[0])] = files[_base(name)]
    return out


def read_server(srv, user, cache, paths):
    """[Msg] of `user`'s whole mailbox: UIDs and flags from Dovecot's index (doveadm
    fetch), bytes from the files of its Maildir storage. paths: {folder: dir} cache."""
    out = srv.doveadm("-f", "tab", "fetch", "-u", user, "mailbox uid guid flags", "ALL").stdout
    lines = out.rstrip("\n").split("\n")[1:]
    files = {}
    msgs = []
    for line in lines:
        if not line:
            continue
        folder, uid, guid, flags = line.split("\t")
        if folder not in files:
            if folder not in paths:
                paths[folder] = srv.doveadm("mailbox", "path", "-u", user,
                                            folder).stdout.strip()
            files[folder] = _uid_files(paths[folder])
        path = files[folder].get(int(uid))
        if path is None:
            raise RuntimeError(f"server {user}/{folder}: no file for UID {uid} ({guid})")
        letters = "".join(sorted(SYSTEM_FLAGS[f] for f in flags.split() if f in SYSTEM_FLAGS))
        st = os.stat(path)
        digest = cache.digest(path, ("srv", user, folder, guid, st.st_size))
        msgs.append(Msg(folder, digest, letters, (int(uid), guid)))
    return msgs


def read_maildir(root, cache, folder_name=lambda rel: rel):
    """[Msg] of a Maildir tree in the verbatim layout (ROOT/INBOX, ROOT/A/B);
    folder_name maps a directory's path under ROOT to the server folder's name."""
    msgs = []
    if not os.path.isdir(root):
        return msgs
    for dirpath, dirnames, _ in os.walk(root):
        if not ("cur" in dirnames and "new" in dirnames):
            continue
        folder = folder_name(os.path.relpath(dirpath, root))
        for sub in ("cur", "new"):
            d = os.path.join(dirpath, sub)
            for name in os.listdir(d):
                if name.startswith("."):
                    continue
                path = os.path.join(d, name)
                st = os.stat(path)
                key = ("local", st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, _base(name))
                msgs.append(Msg(folder, cache.digest(path, key), _info_flags(name), path))
        dirnames[:] = [n for n in dirnames if n not in ("cur", "new", "tmp")]
    return msgs


def as_sets(msgs):
    """{folder: Counter((digest, flags))}, empty folders left out."""
    out = collections.defaultdict(collections.Counter)
    for m in msgs:
        out[m.folder][(m.digest, m.flags)] += 1
    return out


def compare(want, got, want_name, got_name, limit=4):
    """Differences between two [Msg] as short lines (none when equal)."""
    a, b = as_sets(want), as_sets(got)
    problems = []
    for folder in sorted(set(a) | set(b)):
        ca, cb = a.get(folder, collections.Counter()), b.get(folder, collections.Counter())
        if ca == cb:
            continue
        missing, extra = ca - cb, cb - ca
        digests_a = collections.Counter(d for d, _ in missing.elements())
        digests_b = collections.Counter(d for d, _ in extra.elements())
        flags_only = sum((digests_a & digests_b).values())
        problems.append(
            f"{folder}: {want_name} {sum(ca.values())} messages, {got_name} "
            f"{sum(cb.values())}; {sum(missing.values()) - flags_only} missing in "
            f"{got_name}, {sum(extra.values()) - flags_only} only in {got_name}, "
            f"{flags_only} with other flags")
    if len(problems) > limit:
        problems = problems[:limit] + [f"... and {len(problems) - limit} more folders"]
    return problems

