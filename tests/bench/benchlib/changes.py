"""The changes each scenario makes before a resync: the same for every tool, chosen from
the (equal, verified) mailbox contents by a seeded random draw, and applied the way a mail
server or a mail reader would apply them."""

import collections
import dataclasses
import hashlib
import os
import random

from harness import corpus

from .mailstate import SYSTEM_FLAGS, Msg, normalised

LETTER_FLAG = {letter: flag for flag, letter in SYSTEM_FLAGS.items()}


def share(msgs, fraction):
    return max(1, round(len(msgs) * fraction))


def _draw(msgs, count, salt):
    """`count` messages out of msgs, the same ones for every tool holding the same mail."""
    ordered = sorted(msgs, key=lambda m: (m.folder, m.digest, m.flags))
    return random.Random(salt).sample(ordered, min(count, len(ordered)))


def _toggled(flags, letter):
    return "".join(sorted(set(flags) ^ {letter}))


def _letter(i):
    """Alternate between reading/unreading and flagging/unflagging."""
    return "S" if i % 2 == 0 else "F"


def server_changes(srv, user, server_msgs, run, fraction, arrivals):
    """Flag changes on `fraction` of the messages and `arrivals` (corpus messages) seeded
    in, on `user`'s server mailbox. Returns the server contents to expect afterwards."""
    picks = _draw(server_msgs, share(server_msgs, fraction), f"bench-server/{run}")
    ops = collections.defaultdict(list)
    changed = {}
    for i, m in enumerate(picks):
        letter = _letter(i)
        op = "remove" if letter in m.flags else "add"
        ops[(m.folder, LETTER_FLAG[letter], op)].append(m.ref[0])
        changed[id(m)] = _toggled(m.flags, letter)
    for (folder, flag, op), uids in sorted(ops.items()):
        srv.doveadm("flags", op, "-u", user, flag, "mailbox", folder,
                    "uid", ",".join(map(str, sorted(uids))))
    expected = [dataclasses.replace(m, flags=changed.get(id(m), m.flags))
                for m in server_msgs]
    for folder, items in corpus.by_folder(arrivals).items():
        srv.seed(user, folder, items)
        for a in items:
            letters = "".join(sorted(SYSTEM_FLAGS[f] for f in a.flags if f in SYSTEM_FLAGS))
            digest = hashlib.sha256(normalised(a.raw)).hexdigest()
            expected.append(Msg(folder, digest, letters, None))
    return expected


def _rename_flags(path, letter):
    """What a mail reader does to (un)read or (un)flag a message: one rename, into cur/."""
    folder_dir = os.path.dirname(os.path.dirname(path))
    name = os.path.basename(path)
    base, _, info = name.partition(":2,")
    new_info = "".join(sorted(set(info) ^ {letter}))
    target = os.path.join(folder_dir, "cur", f"{base}:2,{new_info}")
    os.rename(path, target)


def local_changes(local_msgs, server_msgs, run, fraction):
    """Flag changes on `fraction` of the Maildir's messages and deletes of another
    `fraction`. Returns the server contents to expect once the tool pushed them up."""
    n = share(local_msgs, fraction)
    picks = _draw(local_msgs, 2 * n, f"bench-local/{run}")
    toggles, deletes = {}, collections.Counter()
    for i, m in enumerate(picks[:n]):
        letter = _letter(i)
        _rename_flags(m.ref, letter)
        toggles[(m.folder, m.digest)] = letter
    for m in picks[n:]:
        os.unlink(m.ref)
        deletes[(m.folder, m.digest)] += 1
    expected = []
    for m in server_msgs:
        key = (m.folder, m.digest)
        if deletes[key] > 0:
            deletes[key] -= 1
            continue
        if key in toggles:
            m = dataclasses.replace(m, flags=_toggled(m.flags, toggles.pop(key)))
        expected.append(m)
    return expected
