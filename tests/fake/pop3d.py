"""A tiny scripted POP3 server for the hostile-server tests of mailferry's POP3 fetch.

It is not a stand-in for a real server (the real-server tests use Dovecot): it speaks just
enough POP3 (RFC 1939, CAPA and PIPELINING of RFC 2449, AUTH PLAIN of RFC 5034, APOP) for
one client to log in, list, retrieve, delete and quit, so that a hostile scenario can break
exactly one step of an otherwise ordinary session.

    box = Maildrop.sample(3)                         # three small messages
    with FakePOP3Server(Scenario(box)) as srv:       # listens on 127.0.0.1:srv.port
        ...                                          # point the client at srv.port
        srv.use(OtherScenario(box))                  # later connections get another script

A scenario is a Scenario subclass that overrides one hook: greeting() or a handle_<verb>
method (handle_retr, handle_capa, ...). A hook ends the connection by raising Hangup. The
maildrop is shared by every connection; DELE takes effect at QUIT only, as RFC 1939 says.
The listener, the threads and the line reading are lineserver.py's, shared with imapd.py.
Scenario options are class attributes, set per instance as keyword arguments:

    DropMidRetr(box, message=2)

Run by hand:  /usr/bin/python3 tests/fake/pop3d.py [--scenario NAME] [--port N]
prints the port on stdout and serves until interrupted.
"""

import base64
import hashlib
import threading

from lineserver import CRLF, Hangup, LineServer, LineSession, serve_by_hand


# ---- the maildrop ----

class Message:
    def __init__(self, raw, uid):
        self.raw = raw          # CRLF line ends, as a POP3 server counts and sends them
        self.uid = uid


def make_message(n, body_lines=3, tag="fake"):
    """A small, deterministic message with CRLF line ends and a dot-stuffable line."""
    lines = [
        "From: Alice Example <alice@example.test>",
        "To: Bob Example <bob@example.test>",
        f"Subject: message {n}",
        "Date: Wed, 17 Jul 2024 09:30:00 +0200",
        f"Message-ID: <{n}.{tag}@pop3.example.test>",
        "",
        ".a line that starts with a dot",
    ]
    lines += [f"line {i} of message {n}: the quick brown fox" for i in range(body_lines)]
    return ("\r\n".join(lines) + "\r\n").encode()


class Maildrop:
    def __init__(self, messages=()):
        self.messages = list(messages)
        self.lock = threading.RLock()

    @classmethod
    def sample(cls, count=3, tag="fake"):
        return cls(Message(make_message(n, tag=tag), f"uid-{tag}-{n}") for n in
                   range(1, count + 1))

    def add(self, raw, uid):
        with self.lock:
            self.messages.append(Message(raw, uid))


# ---- one connection ----

class Session(LineSession):
    def __init__(self, server, sock, index):
        super().__init__(server, sock, index)
        self.user = None
        self.authenticated = False
        self.view = []          # the messages of this session, numbered from 1
        self.deleted = set()    # message numbers marked by DELE

    def multi(self, status, lines):
        """+OK status, then the lines dot-stuffed, then the terminating dot."""
        out = [b"+OK " + (status.encode() if isinstance(status, str) else status)]
        for ln in lines:
            ln = ln.encode() if isinstance(ln, str) else ln
            out.append(b"." + ln if ln.startswith(b".") else ln)
        out.append(b".")
        self.send(CRLF.join(out) + CRLF)

    def message(self, arg):
        """The message numbered arg in this session, or None (answered -ERR)."""
        try:
            n = int(arg)
        except (TypeError, ValueError):
            self.line("-ERR bad message number")
            return None
        if not 1 <= n <= len(self.view) or n in self.deleted:
            self.line("-ERR no such message")
            return None
        return n, self.view[n - 1]

    def run(self):
        sc = self.scenario
        sc.greeting(self)
        while True:
            data = self.readline()
            sc.record(self, data)
            verb, _, arg = data.decode("utf-8", "replace").partition(" ")
            handler = getattr(sc, "handle_" + verb.lower(), None)
            if handler is None:
                self.line(f"-ERR unknown command {verb[:20]}")
                continue
            if verb.upper() not in sc.before_login and not self.authenticated:
                self.line("-ERR log in first")
                continue
            handler(self, arg)


# ---- the well-behaved script ----

class Scenario:
    """A minimal, well-behaved POP3 server. Hostile scenarios override one hook."""

    capabilities = ("TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "SASL PLAIN")
    capa = True           # False: CAPA answers -ERR (an RFC 1939 server)
    apop = False          # True: the greeting carries an APOP timestamp
    user = "u"
    password = "p"
    before_login = {"CAPA", "USER", "PASS", "APOP", "AUTH", "QUIT", "STLS"}

    def __init__(self, maildrop=None, **options):
        self.maildrop = maildrop if maildrop is not None else Maildrop.sample()
        for key, value in options.items():
            if not hasattr(type(self), key):
                raise TypeError(f"{type(self).__name__} has no option {key!r}")
            setattr(self, key, value)
        self.log = []               # (connection index, command line) as received
        self.lock = threading.Lock()

    def record(self, s, data):
        with self.lock:
            self.log.append((s.index, data))

    def commands(self, verb=None):
        return [d for _, d in list(self.log)
                if verb is None or d.upper().startswith(verb.upper().encode())]

    # -- connection start --
    def stamp(self):
        return "<1896.697170952@fake.example.test>"

    def greeting(self, s):
        s.line("+OK fake POP3 server ready" + (" " + self.stamp() if self.apop else ""))

    def handle_capa(self, s, arg):
        if not self.capa:
            s.line("-ERR unknown command CAPA")
            return
        s.multi("capability list follows", list(self.capabilities))

    # -- login --
    def check_login(self, user, password):
        return user == self.user and password == self.password

    def logged_in(self, s, ok):
        if not ok:
            s.line("-ERR [AUTH] invalid user name or password (fake server)")
            return
        with self.maildrop.lock:
            s.view = list(self.maildrop.messages)
        s.authenticated = True
        s.line(f"+OK logged in, {len(s.view)} messages")

    def handle_user(self, s, arg):
        s.user = arg
        s.line("+OK send PASS")

    def handle_pass(self, s, arg):
        self.logged_in(s, s.user is not None and self.check_login(s.user, arg))

    def handle_apop(self, s, arg):
        user, _, digest = arg.partition(" ")
        want = hashlib.md5((self.stamp() + self.password).encode()).hexdigest()
        self.logged_in(s, self.apop and user == self.user and digest == want)

    def handle_auth(self, s, arg):
        mech, _, ir = arg.partition(" ")
        if mech.upper() != "PLAIN":
            s.line("-ERR unsupported mechanism")
            return
        if not ir:
            s.line("+ ")
            ir = s.readline().decode()
            self.record(s, ir.encode())
        if ir == "*":
            s.line("-ERR authentication cancelled")
            return
        try:
            _, user, password = base64.b64decode(ir, validate=True).split(b"\0")
        except ValueError:
            s.line("-ERR bad SASL PLAIN response")
            return
        self.logged_in(s, self.check_login(user.decode(), password.decode()))

    # -- transaction state --
    def live(self, s):
        return [(n, m) for n, m in enumerate(s.view, 1) if n not in s.deleted]

    def handle_stat(self, s, arg):
        live = self.live(s)
        s.line(f"+OK {len(live)} {sum(len(m.raw) for _, m in live)}")

    def handle_list(self, s, arg):
        if arg:
            found = s.message(arg)
            if found:
                s.line(f"+OK {found[0]} {len(found[1].raw)}")
            return
        s.multi("scan listing follows", [f"{n} {len(m.raw)}" for n, m in self.live(s)])

    def handle_uidl(self, s, arg):
        s.multi("unique-id listing follows", [f"{n} {m.uid}" for n, m in self.live(s)])

    def send_message(self, s, n, msg):
        s.multi(f"{len(msg.raw)} octets", msg.raw[:-2].split(CRLF) if msg.raw.endswith(CRLF)
                else msg.raw.split(CRLF))

    def handle_retr(self, s, arg):
        found = s.message(arg)
        if found:
            self.send_message(s, *found)

    def handle_top(self, s, arg):
        num, _, lines = arg.partition(" ")
        found = s.message(num)
        if found:
            head, _, _ = found[1].raw.partition(CRLF + CRLF)
            s.multi("top of message follows", head.split(CRLF) + [b""])

    def handle_dele(self, s, arg):
        found = s.message(arg)
        if found:
            s.deleted.add(found[0])
            s.line(f"+OK message {found[0]} deleted")

    def handle_rset(self, s, arg):
        s.deleted.clear()
        s.line("+OK")

    def handle_noop(self, s, arg):
        s.line("+OK")

    def handle_quit(self, s, arg):
        if s.authenticated and s.deleted:
            gone = {id(s.view[n - 1]) for n in s.deleted}
            with self.maildrop.lock:
                self.maildrop.messages = [m for m in self.maildrop.messages
                                          if id(m) not in gone]
        s.line("+OK bye")
        raise Hangup()


# ---- hostile and broken servers ----

class GarbageGreeting(Scenario):
    """An IMAP server where the POP3 server should be: `* OK ...`, then silence."""

    def greeting(self, s):
        s.line("* OK [CAPABILITY IMAP4rev1] not a POP3 server")
        s.wait_for_close()


class ErrGreeting(Scenario):
    """Refuses the connection: `-ERR [SYS/TEMP] too busy`, then closes."""

    def greeting(self, s):
        s.line("-ERR [SYS/TEMP] too busy, try later")
        raise Hangup()


class BadLineAt(Scenario):
    """Answers `verb` with a line that is no POP3 status (`line`), then silence."""

    verb = "STAT"
    line = b"HELLO \x1b[31mWORLD"

    def __init__(self, maildrop=None, **options):
        super().__init__(maildrop, **options)
        setattr(self, "handle_" + self.verb.lower(), self._bad)

    def _bad(self, s, arg):
        s.line(self.line)
        s.wait_for_close()


class LongLine(Scenario):
    """Answers STAT with a status line of `size` bytes that never ends."""

    size = 200_000

    def handle_stat(self, s, arg):
        s.send(b"+OK " + b"9" * self.size)
        s.wait_for_close()


class EndlessCapa(Scenario):
    """CAPA: +OK, then capability lines forever (until the client hangs up)."""

    def handle_capa(self, s, arg):
        s.line("+OK here they come")
        n = 0
        while True:
            s.send(b"".join(b"X-CAPABILITY-%d\r\n" % (n + i) for i in range(1000)))
            n += 1000


class EndlessRetr(Scenario):
    """RETR `message`: +OK, then body lines forever; never the terminating dot."""

    message = 1

    def handle_retr(self, s, arg):
        if int(arg) != self.message:
            return super().handle_retr(s, arg)
        s.line("+OK here it comes")
        chunk = b"an endless body line of a message that never ends\r\n" * 1000
        while True:
            s.send(chunk)


class DropMidRetr(Scenario):
    """RETR `message`: +OK and the first half of the message, then the connection closes."""

    message = 2

    def handle_retr(self, s, arg):
        found = s.message(arg)
        if not found:
            return
        n, msg = found
        if n != self.message:
            return self.send_message(s, n, msg)
        s.line(f"+OK {len(msg.raw)} octets")
        s.send(msg.raw[:len(msg.raw) // 2])
        raise Hangup()


class RetrErr(Scenario):
    """RETR `message` answers -ERR (a message the server cannot read)."""

    message = 2

    def handle_retr(self, s, arg):
        if int(arg) == self.message:
            s.line("-ERR [SYS/PERM] cannot read that message")
            return
        super().handle_retr(s, arg)


class NoUidl(Scenario):
    """An RFC 1939 server without UIDL (and without it in CAPA)."""

    capabilities = ("TOP", "USER", "PIPELINING", "RESP-CODES", "SASL PLAIN")

    def handle_uidl(self, s, arg):
        s.line("-ERR unknown command UIDL")


class NoUidlNoQuit(NoUidl):
    """Without UIDL, and the connection drops on QUIT before +OK: nothing is deleted."""

    def handle_quit(self, s, arg):
        raise Hangup()


class DuplicateUidl(Scenario):
    """Two messages with the same unique-id."""

    def handle_uidl(self, s, arg):
        s.multi("unique-id listing follows", [f"{n} same-id" for n, _ in self.live(s)])


class BadUidlLine(Scenario):
    """A UIDL line that is not `number unique-id`."""

    def handle_uidl(self, s, arg):
        s.multi("unique-id listing follows", ["1 good-id", "two words here"])


class StlsInjection(Scenario):
    """Offers STLS, and sends a second, plaintext line right behind its +OK: a man in the
    middle injecting a response before the TLS handshake (RFC 2595 section 4)."""

    capabilities = Scenario.capabilities + ("STLS",)

    def handle_stls(self, s, arg):
        s.send(b"+OK begin TLS negotiation\r\n+OK [injected] logged in\r\n")
        s.wait_for_close()


class Silent(Scenario):
    """Logs in, then never answers STAT: the client must time out."""

    def handle_stat(self, s, arg):
        s.wait_for_close()


class InUse(Scenario):
    """The maildrop is locked by another session: -ERR [IN-USE] after PASS."""

    def logged_in(self, s, ok):
        s.line("-ERR [IN-USE] mailbox locked by another session")


SCENARIOS = {c.__name__: c for c in (Scenario, GarbageGreeting, ErrGreeting, BadLineAt,
                                     LongLine, EndlessCapa, EndlessRetr, DropMidRetr,
                                     RetrErr, NoUidl, NoUidlNoQuit, DuplicateUidl,
                                     BadUidlLine, StlsInjection, Silent, InUse)}


class FakePOP3Server(LineServer):
    """Serves a scenario on 127.0.0.1:port, one thread per connection."""

    session_class = Session
    thread_name = "pop3d"

    def __init__(self, scenario=None, port=0):
        super().__init__(scenario if scenario is not None else Scenario(), port)


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="Scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    serve_by_hand(FakePOP3Server(SCENARIOS[a.scenario](Maildrop.sample()), a.port))


if __name__ == "__main__":
    main()
