"""Small messages and Maildir listings for the daemon tests (push, control, hooks, notify)."""

import pathlib
import time


def message(n, subject="test"):
    """A message from sender to alice, CRLF, with a Message-ID unique to this call."""
    return (f"From: sender@example.test\r\nTo: alice@example.test\r\n"
            f"Subject: {subject} {n}\r\nMessage-ID: <{n}-{time.time_ns()}@example.test>\r\n"
            f"\r\nbody {n}\r\n").encode()


def files(folder):
    """A Maildir folder's messages: file name -> path, new/ and cur/ together."""
    out = {}
    for sub in ("new", "cur"):
        d = pathlib.Path(folder) / sub
        if d.is_dir():
            for p in d.iterdir():
                out[p.name] = p
    return out
