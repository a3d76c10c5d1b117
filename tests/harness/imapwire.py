"""IMAP wire details for the harness's imaplib helpers: quoting folder names, parsing FETCH
and LIST answers."""

import dataclasses
import datetime
import re

from . import imaputf7
from .errors import HarnessError

SPECIAL_USE = {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}


@dataclasses.dataclass
class Message:
    uid: int
    flags: set           # stored flags and keywords (\Recent, a session's view, left out)
    internaldate: datetime.datetime
    size: int
    raw: bytes = None  # None when fetched with body=False


@dataclasses.dataclass
class Folder:
    name: str            # UTF-8
    attributes: set      # every LIST attribute, e.g. {"\\HasNoChildren", "\\Sent"}
    special_use: str     # "\\Sent" ... or None
    delimiter: str


def quote(name):
    """A folder name as an IMAP quoted string (modified UTF-7 inside)."""
    return '"' + imaputf7.encode(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(token):
    token = token.strip()
    if token.startswith('"'):
        token = re.sub(r'\\(.)', r'\1', token[1:-1])
    return imaputf7.decode(token)


def check(result, what):
    typ, data = result
    if typ != "OK":
        raise HarnessError(f"{what}: {typ} {data!r}")
    return data


def parse_internaldate(value):
    return datetime.datetime.strptime(value.strip(), "%d-%b-%Y %H:%M:%S %z")


def uid_set(uids):
    if isinstance(uids, (int, str)):
        return str(uids)
    return ",".join(str(u) for u in uids)


def flag_list(flags):
    if isinstance(flags, str):
        flags = [flags]
    return "(" + " ".join(flags) + ")"


def split_fetch(data):
    """imaplib FETCH data -> [(metadata bytes, literal bytes or None)], one per message."""
    out = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            out.append([item[0], item[1]])
        elif out and not re.match(rb"\d+ \(", item):
            out[-1][0] += item  # the rest of the item list after a literal
        else:
            out.append([item, None])
    return out


def parse_message(meta, literal):
    uid = int(re.search(rb"\bUID (\d+)", meta).group(1))
    flags = re.search(rb"\bFLAGS \(([^)]*)\)", meta).group(1).decode().split()
    flags = [f for f in flags if f != "\\Recent"]  # a session's view, not a stored flag
    date = re.search(rb'\bINTERNALDATE "([^"]+)"', meta).group(1).decode()
    size = int(re.search(rb"\bRFC822\.SIZE (\d+)", meta).group(1))
    return Message(uid=uid, flags=set(flags), internaldate=parse_internaldate(date),
                   size=size, raw=literal)


def parse_list(data):
    """imaplib LIST data -> [Folder] (names decoded to UTF-8)."""
    folders = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):  # the name came as a literal
            head, name = item[0].decode(), decode_name(item[1])
            m = re.match(r'\(([^)]*)\) ("[^"]*"|NIL) ', head)
        else:
            m = re.match(r'\(([^)]*)\) ("(?:[^"\\]|\\.)*"|NIL) (.*)$', item.decode())
            name = unquote(m.group(3))
        attrs = set(m.group(1).split())
        special = sorted(attrs & SPECIAL_USE)
        folders.append(Folder(name=name, attributes=attrs,
                              special_use=special[0] if special else None,
                              delimiter=None if m.group(2) == "NIL" else m.group(2)[1:-1]))
    return folders


def decode_name(raw):
    return imaputf7.decode(raw.decode() if isinstance(raw, bytes) else raw)
