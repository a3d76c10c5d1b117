"""The SMTP outbox in the running daemon, end to end: mailferryctl sendmail drops a message
into the outbox, mailferryd sends it through the harness's Postfix (STARTTLS, AUTH), which
delivers into Dovecot, and each test reads back what a user would check: the recipient's
mailbox over IMAP, the sender's Sent folder on the server, and `mailferryctl outbox`.

Covered: a message queued while the daemon was stopped goes out at start; one queued while
it runs goes out at once, with no sync asked for; a deferred message goes out by the retry
timer; a refused one is shown failed with the server's reply, goes out on `outbox retry`
once the server takes it, and `outbox drop` removes another; SIGKILL while the message
streams and SIGKILL after its final "." both end with exactly one copy delivered; the
Sent copy reaches the server's Sent folder, \\Seen, without a sync asked for; pause holds
the outbox; a POP3 account sends too.

Where a test must catch the daemon in the middle of a send, the SMTP connection goes
through a relay in this file that can stop passing bytes one way (it sees only TLS
records, so it counts bytes, or looks at the status files the daemon writes)."""

import json
import os
import re
import signal
import socket
import threading
import time

import pytest
from daemon_mail import reset_smtp_server as reset_server
from waiting import wait_for

POLL = 3600  # no poll during a test: what happens, happens by the outbox's own triggers


def message(srv, subject, to="bob", body="Hello Bob,\nhow are you?\n"):
    return (f"From: Alice <{srv.address('alice')}>\nTo: {srv.address(to)}\n"
            f"Subject: {subject}\nMessage-ID: <{subject.replace(' ', '-')}-{time.time_ns()}"
            f"@example.test>\n\n{body}")


def sendmail(env, text, *rcpts):
    rc, out, err = env.mailferryctl("sendmail", *rcpts, input=text)
    assert (rc, err) == (0, ""), err


def copies(srv, user, folder, subject):
    return [m for m in srv.messages(user, folder) if f"Subject: {subject}\r\n".encode() in m.raw]


def outbox_files(env, account="test"):
    root = env.maildir(account, "Outbox")
    return [p for sub in ("new", "cur") for p in (root / sub).glob("*")] \
        if root.exists() else []


def status_texts(env, account="test"):
    d = env.maildir(account, "Outbox") / ".mailferry"
    return [p.read_text() for p in d.glob("*") if not p.name.endswith(".tmp")] \
        if d.exists() else []


def outbox_json(env):
    rc, out, err = env.mailferryctl("--json", "outbox", "list")
    assert rc == 0, err
    return json.loads(out)


def status_outbox(env):
    rc, out, err = env.mailferryctl("--json", "status")
    assert rc == 0, err
    return json.loads(out)["accounts"][0]["outbox"]


def start(env, *args, ready="event=push"):
    d = env.daemon("-v", *args)
    wait_for("the daemon to start", lambda: ready in d.stderr() or d.proc.poll() is not None)
    assert d.proc.poll() is None, d.stderr()
    return d


def sent_on_server(srv, subject):
    """The Sent copy on the server, once it is there and \\Seen."""
    found = copies(srv, "alice", "Sent", subject)
    return found if found and all("\\Seen" in m.flags for m in found) else None


def exactly_one_delivered(srv, subject, settle=3.0):
    """One copy in bob's INBOX, and still one a while later (a resend would be quick)."""
    wait_for("the delivery", lambda: copies(srv, "bob", "INBOX", subject))
    time.sleep(settle)
    assert len(copies(srv, "bob", "INBOX", subject)) == 1


@pytest.fixture
def env(mf_env, mailserver):
    reset_server(mailserver)
    mf_env.write_config(accounts=[mf_env.account(smtp=True, imap={"poll_interval": POLL})])
    return mf_env


# ----- when the outbox drains --------------------------------------------------------------

def test_queued_while_stopped_goes_out_at_start(env, mailserver):
    sendmail(env, message(mailserver, "while stopped"), mailserver.address("bob"))
    assert len(outbox_files(env)) == 1
    d = start(env)
    [got] = wait_for("the delivery", lambda: copies(mailserver, "bob", "INBOX", "while stopped"))
    assert b"X-Mailferry" not in got.raw
    wait_for("the outbox to empty", lambda: not outbox_files(env))
    assert status_texts(env) == []
    assert "event=sent" in d.stderr()


def test_queued_while_running_goes_out_at_once(env, mailserver):
    """No sync is asked for: the outbox's own watcher sends it, and the Sent copy reaches
    the server's Sent folder, \\Seen, by the sync the drain asks for."""
    d = start(env)
    t0 = time.monotonic()
    sendmail(env, message(mailserver, "while running"), mailserver.address("bob"))
    wait_for("the daemon to send it", lambda: "event=sent" in d.stderr(), timeout=5)
    sent_after = time.monotonic() - t0
    wait_for("the delivery", lambda: copies(mailserver, "bob", "INBOX", "while running"))
    [copy] = wait_for("the Sent copy on the server",
                      lambda: sent_on_server(mailserver, "while running"), timeout=10)
    assert b"To: bob@example.test" in copy.raw
    assert sent_after < 5, sent_after
    assert "event=ctl" not in d.stderr()  # nobody asked for anything
    assert status_outbox(env) == {"queued": 0, "failed": 0, "next_try": 0}
    local = list((env.maildir(folder="Sent") / "cur").glob("*:2,S"))
    assert len(local) == 1


def test_deferred_goes_out_by_the_retry_timer(env, mailserver):
    mailserver.smtp_defer(mailserver.address("bob"))
    d = start(env)
    sendmail(env, message(mailserver, "deferred"), mailserver.address("bob"))
    wait_for("the deferral", lambda: any("attempts=1" in s for s in status_texts(env)))
    [m] = outbox_json(env)["messages"]
    assert m["state"] == "queued" and m["attempts"] == 1
    assert 0 < m["next_try"] - time.time() <= 61, m
    assert "450" in m["reason"] and "<bob@example.test>" in m["reason"], m
    rc, out, err = env.mailferryctl("outbox")
    assert rc == 0 and "queued, next try" in out and "last try:" in out and "450" in out, out
    assert status_outbox(env)["queued"] == 1
    # The server takes mail again; nobody tells the daemon: its timer sends it.
    mailserver.smtp_accept(mailserver.address("bob"))
    wait_for("the retry", lambda: copies(mailserver, "bob", "INBOX", "deferred"),
             timeout=m["next_try"] - time.time() + 20, step=0.5)
    wait_for("the outbox to empty", lambda: not outbox_files(env))
    assert "event=ctl command=sync" not in d.stderr()


def test_refused_then_retry_and_drop(env, mailserver):
    mailserver.smtp_reject(mailserver.address("bob"))
    start(env)
    sendmail(env, message(mailserver, "to retry"), mailserver.address("bob"))
    sendmail(env, message(mailserver, "to drop", to="reject"), mailserver.reject_address)
    wait_for("both to fail", lambda: [m["state"] for m in outbox_json(env)["messages"]]
             == ["failed", "failed"])
    listed = {m["subject"]: m for m in outbox_json(env)["messages"]}
    retry, drop = listed["to retry"], listed["to drop"]
    assert "550 5.1.1" in retry["reason"] and "<bob@example.test>" in retry["reason"], retry
    assert retry["recipients"] == ["bob@example.test"] and retry["account"] == "test"
    assert "550" in drop["reason"] and "<reject@example.test>" in drop["reason"]
    assert status_outbox(env) == {"queued": 0, "failed": 2, "next_try": 0}
    rc, out, err = env.mailferryctl("outbox", "list")
    assert rc == 0, err
    assert re.search(rf"^{re.escape(retry['id'])}  test  failed", out, re.M), out
    assert "  to bob@example.test: to retry" in out
    assert "  failed: " in out and "Recipient address rejected" in out
    # failed stays failed: nothing is sent until the user says so
    time.sleep(1)
    assert not copies(mailserver, "bob", "INBOX", "to retry")
    # the server is fixed; retry by a unique prefix of the ID
    mailserver.smtp_accept(mailserver.address("bob"))
    prefix = retry["id"][:len(os.path.commonprefix([retry["id"], drop["id"]])) + 1]
    rc, out, err = env.mailferryctl("outbox", "retry", prefix)
    assert (rc, out) == (0, f"{retry['id']}: queued again, sending\n"), err
    exactly_one_delivered(mailserver, "to retry", settle=1)
    rc, out, err = env.mailferryctl("outbox", "drop", drop["id"])
    assert (rc, out) == (0, f"{drop['id']}: dropped\n"), err
    assert outbox_files(env) == [] and status_texts(env) == []
    assert outbox_json(env)["messages"] == []
    rc, out, err = env.mailferryctl("outbox")
    assert (rc, out) == (0, "The outbox is empty.\n")
    # what is not there, or not said right
    rc, out, err = env.mailferryctl("outbox", "retry", drop["id"])
    assert rc == 2 and "no message" in err
    rc, out, err = env.mailferryctl("outbox", "drop")
    assert rc == 2 and "usage" in err
    rc, out, err = env.mailferryctl("outbox", "resend", "x")
    assert rc == 2 and "usage" in err


def test_refused_for_one_recipient_sent_to_the_other(env, mailserver):
    """The message goes to the recipients the server takes; the one it refused is listed
    by `outbox list` after the message has left the outbox."""
    start(env)
    sendmail(env, message(mailserver, "partly"), mailserver.address("bob"),
             mailserver.reject_address)
    wait_for("the delivery", lambda: copies(mailserver, "bob", "INBOX", "partly"))
    [r] = wait_for("the refusal listed", lambda: outbox_json(env)["refused"])
    assert r["recipient"] == "reject@example.test" and r["reply"].startswith("550 5.1.1")
    assert r["subject"] == "partly"
    rc, out, err = env.mailferryctl("outbox")
    assert "Sent, but refused for some recipients:" in out
    assert "    reject@example.test: 550 5.1.1" in out, out


def test_pause_holds_the_outbox(env, mailserver):
    start(env)
    rc, out, err = env.mailferryctl("pause")
    assert rc == 0, err
    sendmail(env, message(mailserver, "held"), mailserver.address("bob"))
    time.sleep(2)  # shows that nothing goes out
    assert not copies(mailserver, "bob", "INBOX", "held")
    assert [m["state"] for m in outbox_json(env)["messages"]] == ["queued"]
    rc, out, err = env.mailferryctl("resume")
    assert rc == 0, err
    exactly_one_delivered(mailserver, "held", settle=0)


def test_a_pop3_account_sends_too(mf_env, mailserver):
    reset_server(mailserver)
    mf_env.write_config(accounts=[mf_env.account(protocol="pop3", smtp=True,
                                                 pop3={"poll_interval": POLL})])
    start(mf_env, ready="event=start protocol=pop3")
    sendmail(mf_env, message(mailserver, "from pop3"), mailserver.address("bob"))
    wait_for("the delivery", lambda: copies(mailserver, "bob", "INBOX", "from pop3"))
    # the Sent copy stays local: a POP3 account has no server folders
    wait_for("the Sent copy",
             lambda: list((mf_env.maildir(folder="Sent") / "cur").glob("*:2,S")))
    assert not copies(mailserver, "alice", "Sent", "from pop3")


# ----- SIGKILL in the middle of a send -----------------------------------------------------

class Relay:
    """TCP between mailferryd and Postfix's submission port, byte for byte, that can stop
    passing bytes: upward (client to server) once `up_limit` bytes went up in a
    connection, downward (server to client) while `hold_down()` is true when bytes
    arrive. `held` is set once something is held; cut() drops the connections and
    release() lets everything through from then on."""

    def __init__(self, srv, up_limit=None, hold_down=None):
        self.target = (srv.host, srv.smtp_port)
        self.up_limit, self.hold_down = up_limit, hold_down
        self.held, self.released, self.closed = (threading.Event() for _ in range(3))
        self.socks = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            server = socket.create_connection(self.target)
            self.socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _hold(self):
        self.held.set()
        self.released.wait()

    def _pump(self, src, dst, up):
        passed = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                limit = self.up_limit if up and not self.released.is_set() else None
                if limit is not None and passed + len(data) > limit:
                    dst.sendall(data[:limit - passed])
                    data = data[limit - passed:]
                    passed = limit
                    self._hold()
                elif not up and self.hold_down and not self.released.is_set() \
                        and self.hold_down():
                    self._hold()
                dst.sendall(data)
                passed += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.socks = []

    def release(self):
        self.released.set()

    def close(self):
        self.closed.set()
        self.release()
        self.cut()
        self.listener.close()


@pytest.fixture
def relay_env(mf_env, mailserver):
    reset_server(mailserver)
    relays = []

    def make(**options):
        relay = Relay(mailserver, **options)
        relays.append(relay)
        mf_env.write_config(accounts=[mf_env.account(
            smtp={"port": relay.port}, imap={"poll_interval": POLL})])
        return relay

    yield make
    for relay in relays:
        relay.close()


def test_sigkill_while_the_message_streams(mf_env, mailserver, relay_env):
    """Killed in the middle of DATA: the server drops the unfinished transaction, the
    next start sends the message again, and it arrives once."""
    relay = relay_env(up_limit=2 * 1024 * 1024)
    body = "".join(f"line {i:08d} of a large message, long enough to take a while\n"
                   for i in range(400_000))  # 24 MB
    d = start(mf_env)
    sendmail(mf_env, message(mailserver, "streaming", body=body), mailserver.address("bob"))
    assert relay.held.wait(60), d.stderr()
    # on the wire: listed as sending, and not to be dropped now
    [m] = outbox_json(mf_env)["messages"]
    assert m["state"] == "sending", m
    rc, out, err = mf_env.mailferryctl("outbox", "drop", m["id"])
    assert rc == 1 and "being sent" in err, (rc, out, err)
    assert not any("state=committed" in s for s in status_texts(mf_env))
    d.stop(signal.SIGKILL)
    relay.cut()
    relay.release()
    assert len(outbox_files(mf_env)) == 1
    start(mf_env)
    [got] = wait_for("the delivery", lambda: copies(mailserver, "bob", "INBOX", "streaming"),
                     timeout=60)
    assert got.raw.endswith(b"line 00399999 of a large message, long enough to take a "
                            b"while\r\n")
    exactly_one_delivered(mailserver, "streaming")
    wait_for("the Sent copy on the server", lambda: sent_on_server(mailserver, "streaming"))
    assert len(copies(mailserver, "alice", "Sent", "streaming")) == 1
    wait_for("the outbox to empty", lambda: not outbox_files(mf_env))


def test_sigkill_after_the_final_dot(mf_env, mailserver, relay_env):
    """Killed after the final "." went out and before the server's reply came back (the
    relay holds the reply back once the status file says committed): the server has the
    message; the next start does not send it again but shows it failed, "may have been
    delivered", for the user to retry or drop."""
    def committed():
        return any("state=committed" in s for s in status_texts(mf_env))

    relay = relay_env(hold_down=committed)
    d = start(mf_env)
    sendmail(mf_env, message(mailserver, "after the dot"), mailserver.address("bob"))
    assert relay.held.wait(30), d.stderr()
    wait_for("the server to deliver it",
             lambda: copies(mailserver, "bob", "INBOX", "after the dot"))
    d.stop(signal.SIGKILL)
    relay.cut()
    relay.release()
    start(mf_env)
    [m] = wait_for("the uncertain message to be marked",
                   lambda: [m for m in outbox_json(mf_env)["messages"]
                            if m["state"] == "failed"])
    assert "may have been delivered" in m["reason"], m
    exactly_one_delivered(mailserver, "after the dot")
    rc, out, err = mf_env.mailferryctl("outbox", "drop", m["id"])
    assert rc == 0, err
    assert outbox_files(mf_env) == []
