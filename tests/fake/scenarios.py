"""Hostile and broken IMAP servers: each is the well-behaved Scenario of imapd.py with one
step broken. Options are class attributes, set per instance as keyword arguments:

    ByeAt(mailbox, verb="SELECT", folder="Work")
"""

import select
import time

from imapd import CRLF, Hangup, Mailbox, Scenario, make_message


class ClosedMidGreeting(Scenario):
    """Half a greeting line, then the connection closes."""

    def greeting(self, s):
        s.send(b"* OK [CAPABILITY IMAP4rev1")
        raise Hangup()


class ByeGreeting(Scenario):
    """Refuses the connection: `* BYE too busy`, then closes."""

    text = "too busy"

    def greeting(self, s):
        s.line(f"* BYE {self.text}")
        raise Hangup()


class GarbageGreeting(Scenario):
    """Sends `payload` instead of a greeting, then says nothing and keeps the connection open:
    the client has to give up on its own."""

    payload = b"HTTP/1.1 400 Bad Request\r\n"

    def greeting(self, s):
        s.send(self.payload)
        s.wait_for_close()


class MalformedList(Scenario):
    """Answers LIST with one well-formed line, then `line` (malformed), then silence."""

    line = b'* LIST (\\HasNoChildren "/" INBOX'

    def handle_list(self, s, tag, args):
        s.line(b'* LIST (\\HasNoChildren) "/" INBOX')
        s.line(self.line)
        s.wait_for_close()


class ByeAt(Scenario):
    """An unsolicited `* BYE` instead of the answer to `verb` (e.g. "SELECT", "LIST",
    "UID FETCH"), for `folder` only when set; the connection closes after it.
    For UID FETCH, body_only limits it to the fetch of message bodies."""

    verb = "SELECT"
    folder = None
    text = "server shutting down for maintenance"
    body_only = True

    def _bye(self, s):
        s.line(f"* BYE {self.text}")
        raise Hangup()

    def handle_select(self, s, tag, args):
        name = args[0].decode("utf-8", "replace")
        if self.verb == "SELECT" and self.folder in (None, name):
            self._bye(s)
        super().handle_select(s, tag, args)

    def handle_list(self, s, tag, args):
        if self.verb == "LIST":
            s.line('* LIST (\\HasNoChildren) "/" INBOX')
            self._bye(s)
        super().handle_list(s, tag, args)

    def handle_uid_fetch(self, s, tag, args):
        selected = s.selected.name if s.selected else None
        body = "BODY[]" in self.fetch_items(args)
        if self.verb == "UID FETCH" and self.folder in (None, selected) and \
                (body or not self.body_only):
            self._bye(s)
        super().handle_uid_fetch(s, tag, args)


class BodyTrouble(Scenario):
    """Breaks the BODY[] of the message with UID `uid` (in `folder`, or in any folder when
    None); the messages before it are sent whole. `announce` is the literal size written in
    the header (None: the true size), `send` how many bytes of body follow (None: all of
    `announce`; more than the message holds are filled with garbage), `then` what happens
    next: "close" or "silence"
    (say nothing more and keep the connection open)."""

    uid = 2
    folder = None
    announce = None
    send = None
    then = "close"
    chunk = 1 << 20

    def send_fetch(self, s, seq, msg, items):
        if msg.uid != self.uid or "BODY[]" not in items or \
                self.folder not in (None, s.selected.name):
            super().send_fetch(s, seq, msg, items)
            return
        announce = len(msg.raw) if self.announce is None else self.announce
        heads = [self.fetch_item(s, msg, it) for it in items if it != "BODY[]"]
        s.send(b"* %d FETCH (" % seq + b" ".join(p for p in heads if p is not None) +
               b" BODY[] {%d}" % announce + CRLF)
        todo = announce if self.send is None else self.send
        body = msg.raw[:todo]
        s.send(body)
        todo -= len(body)
        garbage = b"X" * (self.chunk - 2) + CRLF
        while todo > 0:
            piece = garbage[:todo]
            s.send(piece)
            todo -= len(piece)
        if self.then == "silence":
            s.wait_for_close()
        raise Hangup()


class Silent(Scenario):
    """Accepts the connection and never says anything."""

    def greeting(self, s):
        s.wait_for_close()


class Refusing(Scenario):
    """Refuses `verb` ("LOGIN" also covers AUTHENTICATE; "SELECT", "UID FETCH", ...) with
    the tagged `reply` (None: no tagged answer), then sends `* BYE bye` and closes when bye
    is set; `times` times in all (None: always), only while `armed`. The moment of each
    refusal is in `refused` (time.monotonic()). The texts are what providers send when they
    limit an account, e.g. Office 365:
        reply="NO Request is throttled. Suggested Backoff Time: 3000 milliseconds"
    Gmail: reply="NO [ALERT] Too many simultaneous connections. (Failure)" at LOGIN, or
        reply=None, bye="[OVERQUOTA] Account exceeded command or bandwidth limits." """

    verb = "LOGIN"
    reply = "NO Request is throttled. Suggested Backoff Time: 3000 milliseconds"
    bye = None
    times = 1
    armed = True

    def __init__(self, mailbox=None, **options):
        super().__init__(mailbox, **options)
        self.refused = []

    def intercept(self, s, tag, cmd, args):
        verbs = ("LOGIN", "AUTHENTICATE") if self.verb == "LOGIN" else (self.verb,)
        if not self.armed or cmd not in verbs:
            return False
        with self.lock:
            if self.times is not None and len(self.refused) >= self.times:
                return False
            self.refused.append(time.monotonic())
        if self.reply is not None:
            s.line(f"{tag} {self.reply}")
        if self.bye is not None:
            s.line(f"* BYE {self.bye}")
            raise Hangup()
        return True


class ConnectionLimit(Scenario):
    """Lets `limit` connections be logged in at once (as Gmail does, 15 per account); a
    login beyond that is refused with `text`. The moment of each refusal is in `refused`."""

    limit = 2
    text = "NO [ALERT] Too many simultaneous connections. (Failure)"

    def __init__(self, mailbox=None, **options):
        super().__init__(mailbox, **options)
        self.holders = set()
        self.refused = []

    def login_result(self, s, tag, ok):
        if ok:
            with self.lock:
                full = len(self.holders) >= self.limit
                if full:
                    self.refused.append(time.monotonic())
                else:
                    self.holders.add(s.index)
            if full:
                s.line(f"{tag} {self.text}")
                return
        super().login_result(s, tag, ok)

    def closed(self, s):
        with self.lock:
            self.holders.discard(s.index)


class Slow(Scenario):
    """Waits `delay` seconds before answering each command of `verbs`, so that a client's
    connections are busy for a while (and overlap)."""

    delay = 0.05
    verbs = ("SELECT", "EXAMINE", "STATUS", "UID FETCH", "UID SEARCH")

    def intercept(self, s, tag, cmd, args):
        if cmd in self.verbs:
            time.sleep(self.delay)
        return False


class ParallelExpunge(Scenario):
    """Runs an EXPUNGE pipelined behind a UID STORE of \\Deleted before that STORE, as
    Dovecot does when the STORE waits for a lock (RFC 3501 section 5.5 lets a server run
    commands side by side; a client waits where one depends on the other): the STORE
    waits `delay` seconds for a pipelined EXPUNGE, which then expunges nothing. The
    tagged answers keep their order, as Dovecot's did."""

    delay = 0.5

    def handle_uid_store(self, s, tag, args):
        flags = args[2] if isinstance(args[2], list) else args[2:]
        pipelined = self.pipelined_expunge(s) if b"\\Deleted" in flags else None
        if pipelined:
            self.record(s, pipelined)
            self.expunge(s)  # nothing is marked yet
        super().handle_uid_store(s, tag, args)
        if pipelined:
            s.line(f"{pipelined.split()[0].decode()} OK EXPUNGE completed")

    def pipelined_expunge(self, s):
        """The EXPUNGE command line that arrives within `delay` seconds, read; None (and
        nothing read) for anything else."""
        deadline = time.monotonic() + self.delay
        while CRLF not in s.rbuf and time.monotonic() < deadline:
            if select.select([s.sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                s._fill()
        line = s.rbuf.split(CRLF, 1)[0]
        if CRLF not in s.rbuf or line.split()[1:2] != [b"EXPUNGE"]:
            return None
        return s.readline()


# Folder names that try to leave the Maildir root or land on a Maildir's own directories.
# (name on the wire, exact LIST bytes or None for a quoted string)
HOSTILE_NAMES = [
    ("../../etc", None),
    ("../../../../../../../../../../../../tmp/mf-hostile-escape", None),
    ("/abs", None),
    ("a/../../b", None),
    ("..", None),
    (".", None),
    ("./.", None),
    ("INBOX/cur", None),
    ("INBOX/new", None),
    ("Work/tmp", None),
    ("cur", None),
    ("ctl\x01char", None),                  # a raw control character in a quoted string
    ("esc\x1b[31mred", None),               # an ANSI escape, raw
    ("&AAE-ctl-utf7", None),                # U+0001 through modified UTF-7
    ("&AAA-nul", None),                     # U+0000 through modified UTF-7
    ("&AC8-slash-utf7", None),              # '/' through modified UTF-7, in one component
    ("new\nline", b'{8}\r\nnew\nline'),     # LF inside a literal
    ("dots/../..", None),
]


def hostile_names_mailbox(extra=()):
    """INBOX and Work (one message each) plus a folder for each hostile name (one message
    each, its Message-ID naming the folder)."""
    box = Mailbox.sample({"INBOX": 1, "Work": 1})
    for i, (name, wire) in enumerate(list(HOSTILE_NAMES) + list(extra)):
        f = box.add_folder(name, uidvalidity=5000 + i)
        if wire is not None:
            f.wire = wire
        f.add(make_message(name, 1))
    return box


SCENARIOS = {
    "default": Scenario,
    "closed-mid-greeting": ClosedMidGreeting,
    "bye-greeting": ByeGreeting,
    "garbage-greeting": GarbageGreeting,
    "malformed-list": MalformedList,
    "bye-at-select": ByeAt,
    "body-cut": lambda box: BodyTrouble(box, send=100),
    "body-huge": lambda box: BodyTrouble(box, announce=10**12, send=16 << 20),
    "silent": Silent,
}
