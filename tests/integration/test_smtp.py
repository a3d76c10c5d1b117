"""The SMTP outbox end to end: mailferryctl sendmail puts a message into the outbox,
mailferryd sends it through the harness's Postfix (AUTH, STARTTLS), which delivers into
Dovecot, and the test reads it back over IMAP in the recipient's mailbox. The sender's copy
goes to Sent and, through the IMAP sync, to the server's Sent folder."""

import os
import re
import time

import pytest
from daemon_mail import reset_smtp_server as reset_server
from waiting import wait_for

POLL = 3600


@pytest.fixture
def env(mf_env, mailserver):
    reset_server(mailserver)
    mf_env.write_config(accounts=[mf_env.account(smtp=True, imap={"poll_interval": POLL})])
    return mf_env


def sendmail(env, message, *args):
    rc, out, err = env.run("mailferryctl", "sendmail", *args, input=message)
    return rc, err


def outbox(env):
    root = env.maildir(folder="Outbox")
    return [p for sub in ("new", "cur") for p in (root / sub).glob("*")] \
        if root.exists() else []


def status_files(env):
    d = env.maildir(folder="Outbox") / ".mailferry"
    return {p.name: p.read_text() for p in d.glob("*")} if d.exists() else {}


def body_of(raw):
    return raw.split(b"\r\n\r\n", 1)[1]


def header_of(raw):
    return raw.split(b"\r\n\r\n", 1)[0]


def message(srv, subject, to="bob", extra="", body="Hello Bob,\nhow are you?\n"):
    return (f"From: Alice <{srv.address('alice')}>\nTo: {srv.address(to)}\n{extra}"
            f"Subject: {subject}\nMessage-ID: <{subject.replace(' ', '-')}-{time.time_ns()}"
            f"@example.test>\n\n{body}")


def bob_got(srv, subject, count=1):
    srv.wait_for_messages("bob", "INBOX", count, timeout=30)
    return [m for m in srv.messages("bob", "INBOX") if subject.encode() in m.raw]


def test_mutt_style_enqueue_then_send(env, mailserver):
    rc, err = sendmail(env, message(mailserver, "mutt style"), "-oem", "-oi",
                       mailserver.address("bob"))
    assert (rc, err) == (0, "")
    [queued] = outbox(env)
    assert b"X-Mailferry-Envelope-To: <bob@example.test>" in queued.read_bytes()
    rc, out, err = env.mailferryd("--once")
    assert rc == 0, err
    assert "outbox: 1 sent, 0 failed, 0 waiting" in out
    [got] = bob_got(mailserver, "mutt style")
    assert body_of(got.raw) == b"Hello Bob,\r\nhow are you?\r\n"
    assert b"X-Mailferry" not in got.raw
    assert outbox(env) == [] and status_files(env) == {}
    # the copy in Sent, locally and (through the sync in the same run) on the server
    [sent] = list((env.maildir(folder="Sent") / "cur").glob("*:2,S"))
    assert b"Subject: mutt style" in sent.read_bytes()
    [on_server] = mailserver.messages("alice", "Sent")
    assert "\\Seen" in on_server.flags and b"mutt style" in on_server.raw


def test_bcc_recipients_get_it_and_nobody_sees_them(env, mailserver):
    text = message(mailserver, "blind copy", extra=f"Bcc: {mailserver.address('alice')}\n")
    rc, err = sendmail(env, text, "-t")
    assert rc == 0, err
    rc, out, err = env.mailferryd("--once")
    assert rc == 0, err
    [to_bob] = bob_got(mailserver, "blind copy")
    assert b"Bcc" not in header_of(to_bob.raw)
    alice = wait_for("the Bcc copy", lambda: [m for m in mailserver.messages("alice", "INBOX")
                                              if b"blind copy" in m.raw])
    assert b"Bcc" not in header_of(alice[0].raw)
    sent = (env.maildir(folder="Sent") / "cur").glob("*")
    assert any(b"Bcc: alice@example.test" in p.read_bytes() for p in sent)


def test_eight_bit_and_dots_and_line_ends(env, mailserver):
    body = "Grüße aus Köln — ½ €\n.a line starting with a dot\n..two dots\nlast line"
    text = message(mailserver, "eight bit", body=body).replace("\n", "\r\n", 3)
    text = text.replace("Subject", "Content-Type: text/plain; charset=utf-8\nSubject")
    rc, err = sendmail(env, text, "-i", mailserver.address("bob"))
    assert rc == 0, err
    rc, out, err = env.mailferryd("--once")
    assert rc == 0, err
    [got] = bob_got(mailserver, "eight bit")
    assert body_of(got.raw) == (body.replace("\n", "\r\n") + "\r\n").encode()


def test_a_large_attachment(env, mailserver):
    blob = os.urandom(3 * 1024 * 1024)
    import base64
    b64 = base64.encodebytes(blob).decode()
    text = message(mailserver, "attachment", extra="MIME-Version: 1.0\n"
                   "Content-Type: application/octet-stream\n"
                   "Content-Transfer-Encoding: base64\n", body=b64)
    rc, err = sendmail(env, text, mailserver.address("bob"))
    assert rc == 0, err
    rc, out, err = env.mailferryd("--once")
    assert rc == 0, err
    [got] = bob_got(mailserver, "attachment")
    assert base64.decodebytes(body_of(got.raw)) == blob


def test_transient_failure_then_success(env, mailserver):
    mailserver.smtp_defer(mailserver.address("bob"))
    rc, err = sendmail(env, message(mailserver, "deferred"), mailserver.address("bob"))
    assert rc == 0, err
    rc, out, err = env.mailferryd("--once")
    assert "outbox: 0 sent, 0 failed, 1 waiting" in out, out + err
    [status] = status_files(env).values()
    assert "state=queued" in status and "attempts=1" in status and "450" in status
    assert len(outbox(env)) == 1
    # Until its time comes it waits; time passes (the status says when), the server
    # takes mail again.
    mailserver.smtp_accept(mailserver.address("bob"))
    rc, out, err = env.mailferryd("--once")
    assert "outbox: 0 sent, 0 failed, 1 waiting" in out
    [path] = (env.maildir(folder="Outbox") / ".mailferry").glob("*")
    path.write_text(re.sub(r"next_try=\d+", "next_try=0", path.read_text()))
    rc, out, err = env.mailferryd("--once")
    assert rc == 0, err
    assert "outbox: 1 sent" in out
    assert len(bob_got(mailserver, "deferred")) == 1


def test_permanent_rejection_is_kept(env, mailserver):
    rc, err = sendmail(env, message(mailserver, "refused"), mailserver.reject_address)
    assert rc == 0, err
    rc, out, err = env.mailferryd("--once")
    assert rc == 1
    assert "outbox: 0 sent, 1 failed" in err
    [status] = status_files(env).values()
    assert "state=failed" in status and "550" in status
    # failed stays failed: a later run does not try again
    rc, out, err = env.mailferryd("--once")
    assert "outbox: 0 sent, 1 failed" in out + err
    assert len(outbox(env)) == 1


def test_malformed_messages_are_refused_at_once(env, mailserver):
    rc, err = sendmail(env, "Subject: no recipient\nFrom: a@example.test\n\nx\n", "-t")
    assert rc == 65 and "no recipient" in err
    rc, err = sendmail(env, "From: a@example.test\nnot a header\n\nx\n",
                       mailserver.address("bob"))
    assert rc == 65 and "not a header field" in err
    rc, err = sendmail(env, message(mailserver, "x"), "-a", "nosuch", "bob@example.test")
    assert rc == 67 and "nosuch" in err
    rc, err = sendmail(env, message(mailserver, "x"))
    assert rc == 64 and "no recipients" in err
    assert outbox(env) == []
    # a file dropped into the outbox by other means, without a From: failed, kept
    root = env.maildir(folder="Outbox")
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "new" / "1.dropped.host").write_bytes(b"To: bob@example.test\n\nno from\n")
    rc, out, err = env.mailferryd("--once")
    assert rc == 1 and "no From" in err
    [status] = status_files(env).values()
    assert "state=failed" in status and "no From" in status


def test_a_crash_after_the_dot_is_not_sent_again(env, mailserver):
    """The status says committed (the server may have the message): the next run
    reports it, and does not send it again on its own."""
    rc, err = sendmail(env, message(mailserver, "uncertain"), mailserver.address("bob"))
    assert rc == 0, err
    [queued] = outbox(env)
    base = queued.name.split(":")[0]
    sdir = env.maildir(folder="Outbox") / ".mailferry"
    sdir.mkdir(exist_ok=True)
    (sdir / base).write_text("state=committed\nattempts=0\nnext_try=0\nsent_base=\nreply=\n")
    rc, out, err = env.mailferryd("--once")
    assert rc == 1
    assert "may have been delivered" in err
    time.sleep(1)
    assert not [m for m in mailserver.messages("bob", "INBOX") if b"uncertain" in m.raw]
    assert "state=failed" in (sdir / base).read_text()
