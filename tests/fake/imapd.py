"""A tiny scripted IMAP server for the hostile-server tests of mailferry.

It is not a stand-in for a real server (the real-server tests use Dovecot): it speaks just
enough IMAP4rev1 for one client to log in, list, select, fetch, store, append and expunge,
so that a hostile scenario can break exactly one step of an otherwise ordinary session.

    mailbox = Mailbox.sample()                      # INBOX, Sent, Work with a few messages
    with FakeIMAPServer(Scenario(mailbox)) as srv:  # listens on 127.0.0.1:srv.port
        ...                                         # point the client at srv.port
        srv.use(OtherScenario(mailbox))             # later connections get another script

A scenario is a Scenario subclass that overrides one hook: greeting(), intercept() (sees
every command first), a handle_<command> method (handle_select, handle_uid_fetch, ...),
send_fetch() for one message or closed() (a connection ended). A hook ends the connection
by raising Hangup (or calling session.hangup()). Each connection is served by its own
thread; stop() (or leaving the with block) closes every socket and joins them. The
server's connection bookkeeping (accepted, peak, open_connections(), drop_all()) is
lineserver.py's.

Run by hand:  /usr/bin/python3 tests/fake/imapd.py [--scenario NAME] [--port N]
prints the port on stdout and serves until interrupted.
"""

import base64
import re
import threading
import time

from lineserver import CRLF, Hangup, LineServer, LineSession, serve_by_hand


class ProtocolError(Exception):
    """The client sent something the fake cannot parse; answered with BAD."""


# ---- the mailbox ----

class Message:
    def __init__(self, uid, raw, flags=(), internaldate="17-Jul-2024 09:30:00 +0200"):
        self.uid = uid
        self.raw = raw
        self.flags = set(flags)
        self.internaldate = internaldate

    def message_id(self):
        m = re.search(rb"^Message-ID:\s*(<[^>]*>)", self.raw, re.I | re.M)
        return m.group(1) if m else None


class Folder:
    def __init__(self, name, uidvalidity=1000, delim="/", attrs=("\\HasNoChildren",),
                 wire=None):
        self.name = name            # the name on the wire (modified UTF-7 or raw bytes)
        self.wire = wire            # exact bytes for LIST, when the name needs a literal etc.
        self.uidvalidity = uidvalidity
        self.uidnext = 1
        self.delim = delim
        self.attrs = list(attrs)
        self.messages = []

    def add(self, raw, flags=(), internaldate=None):
        kw = {"internaldate": internaldate} if internaldate else {}
        msg = Message(self.uidnext, raw, flags, **kw)
        self.uidnext += 1
        self.messages.append(msg)
        return msg

    def renumber(self, uidvalidity, first_uid):
        """A server that lost its UIDs: same messages, new UIDVALIDITY and UIDs."""
        self.uidvalidity = uidvalidity
        for i, m in enumerate(self.messages):
            m.uid = first_uid + i
        self.uidnext = first_uid + len(self.messages)


def make_message(folder, n, body_lines=3):
    """A small, deterministic RFC 5322 message with CRLF line ends."""
    tag = re.sub(r"[^A-Za-z0-9]", "_", folder) or "_"
    lines = [
        "From: Alice Example <alice@example.test>",
        "To: Bob Example <bob@example.test>",
        f"Subject: message {n} of {folder!r}",
        "Date: Wed, 17 Jul 2024 09:30:00 +0200",
        f"Message-ID: <{n}.{tag}@fake.example.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
    ]
    lines += [f"line {i} of message {n} in {folder!r}: the quick brown fox"
              for i in range(body_lines)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class Mailbox:
    """The server's folders, shared by every connection (and scenario) of a server."""

    def __init__(self, folders=()):
        self.folders = list(folders)
        self.lock = threading.RLock()

    @classmethod
    def sample(cls, counts=None, uidvalidity=1000):
        counts = counts if counts is not None else {"INBOX": 3, "Sent": 1, "Work": 2}
        box = cls()
        for i, (name, count) in enumerate(counts.items()):
            f = box.add_folder(name, uidvalidity=uidvalidity + i)
            for n in range(1, count + 1):
                f.add(make_message(name, n), flags=("\\Seen",) if n % 2 == 0 else ())
        return box

    def add_folder(self, name, **kw):
        f = Folder(name, **kw)
        self.folders.append(f)
        return f

    def find(self, name):
        for f in self.folders:
            if f.name == name or (name.upper() == "INBOX" and f.name.upper() == "INBOX"):
                return f
        return None

    def all_raw(self):
        return [m.raw for f in self.folders for m in f.messages]


# ---- parsing what the client sends ----

def _find_close_bracket(data, i):
    depth = 0
    while i < len(data):
        c = data[i:i + 1]
        if c == b"[":
            depth += 1
        elif c == b"]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ProtocolError("unbalanced [")


def tokenize(data):
    """An IMAP command (literals inlined as {N}CRLF<bytes>) -> nested lists of bytes.
    Quoted strings and literals become bytes; atoms stay bytes too (compare upper-cased)."""
    out, stack, i = [], [], 0
    cur = out
    while i < len(data):
        c = data[i:i + 1]
        if c == b" ":
            i += 1
        elif c == b"(":
            stack.append(cur)
            cur.append([])
            cur = cur[-1]
            i += 1
        elif c == b")":
            if not stack:
                raise ProtocolError("unbalanced )")
            cur = stack.pop()
            i += 1
        elif c == b'"':
            j, val = i + 1, bytearray()
            while j < len(data) and data[j:j + 1] != b'"':
                if data[j:j + 1] == b"\\":
                    j += 1
                val += data[j:j + 1]
                j += 1
            if j >= len(data):
                raise ProtocolError("unterminated quoted string")
            cur.append(bytes(val))
            i = j + 1
        elif c == b"{":
            m = re.match(rb"\{(\d+)\+?\}\r\n", data[i:])
            if not m:
                raise ProtocolError("bad literal")
            n = int(m.group(1))
            start = i + m.end()
            cur.append(data[start:start + n])
            i = start + n
        else:
            j = i
            while j < len(data) and data[j:j + 1] not in (b" ", b"(", b")"):
                if data[j:j + 1] == b"[":
                    j = _find_close_bracket(data, j)
                else:
                    j += 1
            cur.append(data[i:j])
            i = j
    if stack:
        raise ProtocolError("unbalanced (")
    return out


def parse_uid_set(text, uids):
    """'1:3,5,7:*' over the existing UIDs -> the set of existing UIDs it names."""
    top = max(uids) if uids else 0
    chosen = set()
    for part in text.split(","):
        if ":" in part:
            a, b = part.split(":", 1)
        else:
            a = b = part
        lo = top if a == "*" else int(a)
        hi = top if b == "*" else int(b)
        lo, hi = min(lo, hi), max(lo, hi)
        chosen.update(u for u in uids if lo <= u <= hi)
    return chosen


def quote(name):
    """A name as an IMAP string: quoted when it can be, else a literal."""
    raw = name.encode("utf-8") if isinstance(name, str) else name
    if any(b in (0, 10, 13) or b > 127 for b in raw):
        return b"{%d}\r\n" % len(raw) + raw
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def flag_list(flags):
    return "(" + " ".join(sorted(flags)) + ")"


# ---- one connection ----

class Session(LineSession):
    def __init__(self, server, sock, index):
        super().__init__(server, sock, index)
        self.selected = None
        self.authenticated = False

    def read_command(self):
        """One command with its literals inlined (answering '+' for synchronizing ones)."""
        data = b""
        while True:
            line = self.readline()
            data += line
            m = re.search(rb"\{(\d+)(\+?)\}$", line)
            if not m:
                return data
            if not m.group(2):
                self.line("+ go ahead")
            data += CRLF + self.readexact(int(m.group(1)))

    def run(self):
        sc = self.scenario
        sc.greeting(self)
        while True:
            data = self.read_command()
            sc.record(self, data)
            try:
                words = tokenize(data)
            except ProtocolError as e:
                self.line(f"* BAD {e}")
                continue
            if len(words) < 2 or not isinstance(words[0], bytes) or \
                    not isinstance(words[1], bytes):
                self.line("* BAD no tag or command")
                continue
            tag = words[0].decode("ascii", "replace")
            cmd = words[1].decode("ascii", "replace").upper()
            args = words[2:]
            if cmd == "UID" and args and isinstance(args[0], bytes):
                cmd = "UID " + args[0].decode("ascii", "replace").upper()
                args = args[1:]
            if sc.intercept(self, tag, cmd, args):
                continue
            handler = getattr(sc, "handle_" + cmd.lower().replace(" ", "_"), None)
            if handler is None:
                self.line(f"{tag} BAD unknown command {cmd}")
                continue
            try:
                handler(self, tag, args)
            except (ProtocolError, ValueError, IndexError) as e:
                self.line(f"{tag} BAD {e}")


# ---- the well-behaved script ----

class Scenario:
    """A minimal, well-behaved IMAP4rev1 server. Hostile scenarios override one hook."""

    capabilities = "IMAP4rev1"
    user = "u"
    password = "p"

    def __init__(self, mailbox=None, **options):
        self.mailbox = mailbox if mailbox is not None else Mailbox.sample()
        for key, value in options.items():   # class attributes: capabilities, password, ...
            if not hasattr(type(self), key):
                raise TypeError(f"{type(self).__name__} has no option {key!r}")
            setattr(self, key, value)
        self.log = []               # (connection index, command line) as received
        self.stamps = []            # (time.monotonic(), connection index, command line)
        self.lock = threading.Lock()

    def record(self, s, data):
        with self.lock:
            self.log.append((s.index, data))
            self.stamps.append((time.monotonic(), s.index, data))

    def intercept(self, s, tag, cmd, args):
        """Sees each command (cmd upper-case, "UID FETCH" for UID commands) before its
        handler; returns True when it answered the command itself."""
        return False

    def closed(self, s):
        """The connection of session s ended (either side closed it)."""

    def commands(self, verb=None):
        """The commands received, without tags, optionally only those starting with verb."""
        out = []
        for _, data in list(self.log):
            text = data.split(b" ", 1)[1] if b" " in data else data
            if verb is None or text.upper().startswith(verb.upper().encode()):
                out.append(text)
        return out

    # -- connection start --
    def greeting(self, s):
        s.line(f"* OK [CAPABILITY {self.capabilities}] fake IMAP server ready")

    # -- any state --
    def handle_capability(self, s, tag, args):
        s.line(f"* CAPABILITY {self.capabilities}")
        s.line(f"{tag} OK CAPABILITY completed")

    def handle_noop(self, s, tag, args):
        s.line(f"{tag} OK NOOP completed")

    def handle_logout(self, s, tag, args):
        s.line("* BYE logging out")
        s.line(f"{tag} OK LOGOUT completed")
        raise Hangup()

    # -- login --
    def check_login(self, user, password):
        return user == self.user and password == self.password

    def login_result(self, s, tag, ok):
        if ok:
            s.authenticated = True
            s.line(f"{tag} OK [CAPABILITY {self.capabilities}] logged in")
        else:
            s.line(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed (fake server)")

    def handle_login(self, s, tag, args):
        user, password = (a.decode("utf-8", "replace") for a in args[:2])
        self.login_result(s, tag, self.check_login(user, password))

    def handle_authenticate(self, s, tag, args):
        if args[0].upper() != b"PLAIN" or "AUTH=PLAIN" not in self.capabilities.split():
            s.line(f"{tag} NO unsupported mechanism")
            return
        if len(args) > 1:
            blob = args[1]
        else:
            s.line("+ ")
            blob = s.readline()
            self.record(s, blob)
        if blob == b"*":
            s.line(f"{tag} BAD authentication cancelled")
            return
        try:
            _, user, password = base64.b64decode(blob, validate=True).split(b"\0")
        except ValueError:
            s.line(f"{tag} BAD bad SASL PLAIN response")
            return
        self.login_result(s, tag, self.check_login(user.decode("utf-8", "replace"),
                                                   password.decode("utf-8", "replace")))

    def handle_enable(self, s, tag, args):
        s.line(f"{tag} OK ENABLE completed")

    def handle_idle(self, s, tag, args):
        """RFC 2177 without news: waits for DONE (only offered with IDLE in capabilities)."""
        s.line("+ idling")
        line = s.readline()
        self.record(s, line)
        if line.upper() != b"DONE":
            s.line(f"{tag} BAD expected DONE")
            return
        s.line(f"{tag} OK IDLE terminated")

    # -- folders --
    def list_line(self, f):
        attrs = "(" + " ".join(f.attrs) + ")"
        delim = f'"{f.delim}"' if f.delim else "NIL"
        name = f.wire if f.wire is not None else quote(f.name)
        return b"* LIST " + f"{attrs} {delim} ".encode() + name

    def handle_list(self, s, tag, args):
        with self.mailbox.lock:
            lines = [self.list_line(f) for f in self.mailbox.folders]
        for line in lines:
            s.line(line)
        s.line(f"{tag} OK LIST completed")

    def handle_lsub(self, s, tag, args):
        self.handle_list(s, tag, args)

    def handle_status(self, s, tag, args):
        f = self.mailbox.find(args[0].decode("utf-8", "replace"))
        if f is None:
            s.line(f"{tag} NO [NONEXISTENT] no such folder")
            return
        unseen = sum(1 for m in f.messages if "\\Seen" not in m.flags)
        s.line(b"* STATUS " + quote(f.name) + (
            f" (MESSAGES {len(f.messages)} UIDNEXT {f.uidnext} UIDVALIDITY {f.uidvalidity} "
            f"UNSEEN {unseen})").encode())
        s.line(f"{tag} OK STATUS completed")

    def handle_create(self, s, tag, args):
        name = args[0].decode("utf-8", "replace")
        with self.mailbox.lock:
            if self.mailbox.find(name):
                s.line(f"{tag} NO [ALREADYEXISTS] folder exists")
                return
            self.mailbox.add_folder(name, uidvalidity=int(time.time()) & 0x7FFFFFFF)
        s.line(f"{tag} OK CREATE completed")

    def handle_subscribe(self, s, tag, args):
        s.line(f"{tag} OK SUBSCRIBE completed")

    def select_responses(self, s, f):
        s.line("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
        s.line("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] ok")
        s.line(f"* {len(f.messages)} EXISTS")
        s.line("* 0 RECENT")
        s.line(f"* OK [UIDVALIDITY {f.uidvalidity}] UIDs valid")
        s.line(f"* OK [UIDNEXT {f.uidnext}] predicted next UID")

    def handle_select(self, s, tag, args):
        f = self.mailbox.find(args[0].decode("utf-8", "replace"))
        if f is None:
            s.selected = None
            s.line(f"{tag} NO [NONEXISTENT] no such folder")
            return
        s.selected = f
        self.select_responses(s, f)
        s.line(f"{tag} OK [READ-WRITE] SELECT completed")

    def handle_examine(self, s, tag, args):
        self.handle_select(s, tag, args)

    def handle_close(self, s, tag, args):
        if s.selected:
            self.expunge(s, silent=True)
        s.selected = None
        s.line(f"{tag} OK CLOSE completed")

    # -- messages --
    def need_selected(self, s, tag):
        if s.selected is None:
            s.line(f"{tag} BAD no folder selected")
            return None
        return s.selected

    def fetch_items(self, args):
        """The requested item names, upper-cased, BODY.PEEK written as BODY."""
        items = args[1] if isinstance(args[1], list) else [args[1]]
        names = []
        for it in items:
            if isinstance(it, list):
                continue        # the field list of HEADER.FIELDS is inside the item already
            names.append(it.decode("ascii", "replace").upper().replace("BODY.PEEK[", "BODY["))
        return names

    def fetch_item(self, s, msg, item):
        """One 'NAME value' of a FETCH response, as bytes."""
        if item == "UID":
            return b"UID %d" % msg.uid
        if item == "FLAGS":
            return b"FLAGS " + flag_list(msg.flags).encode()
        if item == "INTERNALDATE":
            return b'INTERNALDATE "' + msg.internaldate.encode() + b'"'
        if item == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % len(msg.raw)
        if item in ("BODY[]", "RFC822"):
            return item.encode() + b" {%d}\r\n" % len(msg.raw) + msg.raw
        if item.startswith("BODY[HEADER.FIELDS"):
            mid = msg.message_id()
            text = (b"Message-ID: " + mid + CRLF if mid else b"") + CRLF
            return item.encode() + b" {%d}\r\n" % len(text) + text
        if item == "BODY[HEADER]":
            head = msg.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            return b"BODY[HEADER] {%d}\r\n" % len(head) + head
        return None

    def send_fetch(self, s, seq, msg, items):
        """`* SEQ FETCH (...)` for one message; the hook hostile scenarios break."""
        parts = [self.fetch_item(s, msg, it) for it in items]
        s.send(b"* %d FETCH (" % seq + b" ".join(p for p in parts if p is not None) + b")"
               + CRLF)

    def handle_uid_fetch(self, s, tag, args):
        f = self.need_selected(s, tag)
        if f is None:
            return
        items = self.fetch_items(args)
        if "UID" not in items:
            items.insert(0, "UID")
        with self.mailbox.lock:
            chosen = parse_uid_set(args[0].decode(), [m.uid for m in f.messages])
            todo = [(i + 1, m) for i, m in enumerate(f.messages) if m.uid in chosen]
        for seq, msg in todo:
            self.send_fetch(s, seq, msg, items)
        s.line(f"{tag} OK UID FETCH completed")

    def handle_uid_search(self, s, tag, args):
        f = self.need_selected(s, tag)
        if f is None:
            return
        s.line("* SEARCH" + "".join(f" {m.uid}" for m in f.messages))
        s.line(f"{tag} OK UID SEARCH completed")

    def handle_uid_store(self, s, tag, args):
        f = self.need_selected(s, tag)
        if f is None:
            return
        what = args[1].decode().upper()
        flags = args[2] if isinstance(args[2], list) else args[2:]
        flags = {x.decode() for x in flags}
        with self.mailbox.lock:
            chosen = parse_uid_set(args[0].decode(), [m.uid for m in f.messages])
            for seq, m in enumerate(f.messages, 1):
                if m.uid not in chosen:
                    continue
                if what.startswith("+"):
                    m.flags |= flags
                elif what.startswith("-"):
                    m.flags -= flags
                else:
                    m.flags = set(flags)
                if not what.endswith(".SILENT"):
                    s.line(f"* {seq} FETCH (UID {m.uid} FLAGS {flag_list(m.flags)})")
        s.line(f"{tag} OK UID STORE completed")

    def expunge(self, s, silent=False):
        f = s.selected
        with self.mailbox.lock:
            seq = 1
            for m in list(f.messages):
                if "\\Deleted" in m.flags:
                    f.messages.remove(m)
                    if not silent:
                        s.line(f"* {seq} EXPUNGE")
                else:
                    seq += 1

    def handle_expunge(self, s, tag, args):
        if self.need_selected(s, tag) is None:
            return
        self.expunge(s)
        s.line(f"{tag} OK EXPUNGE completed")

    def handle_append(self, s, tag, args):
        f = self.mailbox.find(args[0].decode("utf-8", "replace"))
        if f is None:
            s.line(f"{tag} NO [TRYCREATE] no such folder")
            return
        flags = next((a for a in args[1:-1] if isinstance(a, list)), [])
        with self.mailbox.lock:
            f.add(args[-1], flags={x.decode() for x in flags})
        s.line(f"{tag} OK APPEND completed")


# ---- the server ----

class FakeIMAPServer(LineServer):
    """Serves a scenario on 127.0.0.1:port, one thread per connection."""

    session_class = Session
    thread_name = "imapd"

    def __init__(self, scenario=None, port=0):
        super().__init__(scenario if scenario is not None else Scenario(), port)

    def _finished(self, session):
        session.scenario.closed(session)


def main():
    import argparse
    import os
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import scenarios  # the hostile ones, by name

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="default", choices=sorted(scenarios.SCENARIOS))
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    serve_by_hand(FakeIMAPServer(scenarios.SCENARIOS[a.scenario](Mailbox.sample()), a.port))


if __name__ == "__main__":
    main()
