"""The test harness itself: the private mail server, its helpers and the fixtures."""

import datetime
import hashlib
import imaplib
import os
import poplib
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from harness import corpus
from harness.mailserver import HarnessError, processes_under, reap_stale_instances

BODY = "Grüße from the harness — ünïcødé body line\r\nsecond line\r\n".encode()


def unique_message(subject="harness test", sender="bob@example.test", to="alice@example.test"):
    mid = f"<{uuid.uuid4().hex}@harness.example.test>"
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
            f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
    return mid, head.encode() + b"\r\n" + BODY


def find(server, user, mid, folder="INBOX", timeout=10.0):
    """The message with Message-ID `mid` in the folder, waiting for its delivery."""
    deadline = time.monotonic() + timeout
    while True:
        for m in server.messages(user, folder):
            if mid.encode() in m.raw:
                return m
        if time.monotonic() > deadline:
            raise AssertionError(f"{mid} not delivered to {user}/{folder}")
        time.sleep(0.05)


def body_of(raw):
    return raw.split(b"\r\n\r\n", 1)[1]


# ----- TLS and logins ---------------------------------------------------------------------

def test_imaps_verified_with_ca_and_fingerprint(mailserver):
    conn = imaplib.IMAP4_SSL(mailserver.host, mailserver.imaps_port,
                             ssl_context=mailserver.ssl_context())
    der = conn.sock.getpeercert(binary_form=True)
    assert hashlib.sha256(der).hexdigest() == mailserver.fingerprint
    assert len(mailserver.fingerprint) == 64
    assert conn.login("alice", mailserver.users["alice"])[0] == "OK"
    conn.logout()
    # The same certificate passes a name check for "localhost" (peer tools need it) ...
    ctx = mailserver.ssl_context()
    raw_sock = socket.create_connection((mailserver.host, mailserver.imaps_port))
    with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")
    # ... and is refused by a client that does not trust the harness CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(mailserver.host, mailserver.imaps_port,
                          ssl_context=ssl.create_default_context())


def test_imap_starttls_and_plaintext(mailserver):
    conn = imaplib.IMAP4(mailserver.host, mailserver.imap_port)
    assert "STARTTLS" in conn.capabilities
    conn.starttls(mailserver.ssl_context())
    assert conn.login("bob", mailserver.users["bob"])[0] == "OK"
    conn.logout()
    # tls = "none" tests need plaintext logins on loopback.
    conn = mailserver.imap_connect(tls="none")
    assert "LOGINDISABLED" not in conn.capabilities
    assert conn.login("bob", mailserver.users["bob"])[0] == "OK"
    conn.logout()
    # Full addresses log in to the same mailbox.
    conn = mailserver.imap_connect()
    assert conn.login(mailserver.address("bob"), mailserver.users["bob"])[0] == "OK"
    conn.logout()


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"])
def test_sasl_mechanisms(mailserver, mech):
    pw, token = mailserver.users["alice"], mailserver.oauth_tokens["alice"]
    answers = {
        "PLAIN": [f"\0alice\0{pw}".encode()],
        "LOGIN": [b"alice", pw.encode()],
        "XOAUTH2": [f"user=alice\x01auth=Bearer {token}\x01\x01".encode()],
        "OAUTHBEARER": [f"n,a=alice,\x01auth=Bearer {token}\x01\x01".encode()],
    }[mech]
    conn = mailserver.imap_connect()
    assert f"AUTH={mech}" in conn.capabilities
    assert conn.authenticate(mech, lambda _: answers.pop(0))[0] == "OK"
    conn.logout()


def test_wrong_credentials_fail_fast(mailserver):
    t0 = time.monotonic()
    for attempt in range(3):
        conn = mailserver.imap_connect()
        with pytest.raises(imaplib.IMAP4.error):
            conn.login("alice", "wrong-password")
        conn.logout()
    # A token is no password and the reverse.
    conn = mailserver.imap_connect()
    with pytest.raises(imaplib.IMAP4.error):
        conn.login("alice", mailserver.oauth_tokens["alice"])
    conn.logout()
    assert time.monotonic() - t0 < 5, "failed logins must not slow later tests down"
    with mailserver.imap("alice") as conn:
        assert conn.noop()[0] == "OK"


def test_pop3s_and_pop3_stls(mailserver):
    conn = mailserver.pop3_connect("implicit")
    conn.user("alice")
    conn.pass_(mailserver.users["alice"])
    assert conn.stat()[0] >= 0
    conn.quit()
    conn = poplib.POP3(mailserver.host, mailserver.pop3_port)
    assert "STLS" in conn.capa()
    conn.stls(mailserver.ssl_context())
    conn.user("bob")
    conn.pass_(mailserver.users["bob"])
    conn.quit()


# ----- delivery paths -----------------------------------------------------------------------

def test_lmtp_delivery_reads_back_byte_for_byte(mailserver):
    mid, raw = unique_message("via lmtp")
    assert mailserver.lmtp_send("alice", raw) == {}
    msg = find(mailserver, "alice", mid)
    # Dovecot only prepends its trace headers (Return-Path, Delivered-To, Received).
    assert msg.raw.endswith(raw)
    assert msg.size == len(msg.raw)


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_smtp_submission_reaches_imap(mailserver, tls):
    mid, raw = unique_message(f"via smtp {tls}")
    with mailserver.smtp("bob", tls=tls) as conn:
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert conn.sendmail("bob@example.test", ["alice@example.test"], raw) == {}
    msg = find(mailserver, "alice", mid)
    assert body_of(msg.raw) == BODY
    assert b"with ESMTPSA" in msg.raw  # authenticated submission over TLS


def test_smtp_requires_auth_to_relay(mailserver):
    _, raw = unique_message()
    conn = mailserver.smtp_connect("starttls")
    assert "auth" in conn.esmtp_features
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        conn.sendmail("x@example.test", ["alice@example.test"], raw)
    conn.quit()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        with mailserver.smtp_connect() as conn:
            conn.login("alice", "wrong")


def test_smtp_permanent_and_temporary_rejections(mailserver):
    mid, raw = unique_message("rejections")
    with mailserver.smtp("alice") as conn:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as exc:
            conn.sendmail("alice@example.test", [mailserver.reject_address], raw)
        assert exc.value.recipients[mailserver.reject_address][0] == 550
        with pytest.raises(smtplib.SMTPRecipientsRefused) as exc:
            conn.sendmail("alice@example.test", [mailserver.defer_address], raw)
        assert exc.value.recipients[mailserver.defer_address][0] == 450

    # Chosen at test time; mixed recipients: the good one is still delivered.
    mailserver.smtp_reject("bob@example.test", "554 5.7.1 bob refuses mail")
    mailserver.smtp_defer("carol@example.test")
    try:
        with mailserver.smtp("alice") as conn:
            refused = conn.sendmail("alice@example.test", ["bob@example.test",
                                                           "carol@example.test",
                                                           "alice@example.test"], raw)
        assert refused["bob@example.test"][0] == 554
        assert b"bob refuses mail" in refused["bob@example.test"][1]
        assert refused["carol@example.test"][0] == 450
        find(mailserver, "alice", mid)
    finally:
        mailserver.smtp_accept("bob@example.test")
        mailserver.smtp_accept("carol@example.test")
    mid2, raw2 = unique_message("accepted again", sender="alice@example.test",
                                to="bob@example.test")
    with mailserver.smtp("alice") as conn:
        assert conn.sendmail("alice@example.test", ["bob@example.test"], raw2) == {}
    find(mailserver, "bob", mid2)


# ----- capability profiles ------------------------------------------------------------------

EXPECTED = {
    "full": ({"IDLE", "NOTIFY", "CONDSTORE", "QRESYNC", "UIDPLUS", "MOVE", "SPECIAL-USE",
              "LIST-STATUS", "COMPRESS=DEFLATE", "LITERAL+", "ENABLE", "ESEARCH"}, set()),
    "gmail": ({"IDLE", "CONDSTORE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LIST-STATUS",
               "COMPRESS=DEFLATE"}, {"QRESYNC", "NOTIFY"}),
    "o365": ({"IDLE", "UIDPLUS", "MOVE", "LITERAL+"},
             {"CONDSTORE", "QRESYNC", "NOTIFY", "SPECIAL-USE", "LIST-STATUS",
              "COMPRESS=DEFLATE"}),
    "imap4rev1": ({"IMAP4REV1"}, {"IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "LITERAL+",
                                  "SPECIAL-USE", "COMPRESS=DEFLATE", "NAMESPACE"}),
}


@pytest.mark.parametrize("capability_profile", list(EXPECTED), indirect=True)
def test_capability_profiles(mailserver, capability_profile):
    assert mailserver.capabilities == capability_profile
    has, lacks = EXPECTED[capability_profile]
    with mailserver.imap("alice") as conn:
        caps = set(conn.capability()[1][0].decode().upper().split())
    assert has <= caps, has - caps
    assert not lacks & caps, lacks & caps
    prelogin = set(mailserver.imap_connect("starttls").capabilities)
    assert "AUTH=PLAIN" in prelogin
    if capability_profile == "imap4rev1":
        assert {c for c in prelogin if c.startswith("AUTH=")} == {"AUTH=PLAIN"}


def test_any_password_works_in_the_helpers(mailserver_factory):
    users = {"carol": 'c a"r\\ol x1', "dave": "dävé-x2"}
    srv = mailserver_factory(users=users, capabilities="imap4rev1")
    for user in users:
        srv.deliver(user, b"Subject: x\r\n\r\ny\r\n")
        with srv.smtp(user) as conn:
            conn.sendmail(srv.address(user), [srv.address("carol")], b"Subject: z\r\n\r\nz\r\n")
    assert len(srv.wait_for_messages("carol", count=3)) == 3


def test_compress_switch(mailserver_factory):
    srv = mailserver_factory(compress=False)
    with srv.imap("alice") as conn:
        caps = conn.capability()[1][0].decode().upper().split()
    assert "COMPRESS=DEFLATE" not in caps and "NOTIFY" in caps


# ----- mailbox helpers ----------------------------------------------------------------------

def test_folders_with_special_use_and_odd_names(mailserver):
    special = {f.name: f.special_use for f in mailserver.list_folders("bob") if f.special_use}
    assert special == {"Sent": "\\Sent", "Drafts": "\\Drafts", "Junk": "\\Junk",
                       "Trash": "\\Trash", "Archive": "\\Archive"}
    names = ["Reisen/Übersicht", "日本語", "Friends & Family", "Lists/dev.announce",
             'Quote "me"']
    for name in names:
        mailserver.create_folder("bob", name)
    listed = {f.name for f in mailserver.list_folders("bob")}
    assert set(names) <= listed and "Reisen" in listed
    assert all(f.delimiter == "/" for f in mailserver.list_folders("bob"))
    mailserver.delete_folder("bob", "Friends & Family")
    assert "Friends & Family" not in {f.name for f in mailserver.list_folders("bob")}
    uid = mailserver.deliver("bob", b"Subject: x\r\n\r\ny\r\n", folder="日本語")
    assert [m.uid for m in mailserver.messages("bob", "日本語")] == [uid]


def test_deliver_flags_expunge_status(mailserver):
    folder = "Flags"
    mailserver.create_folder("alice", folder)
    when = datetime.datetime(2023, 5, 17, 8, 30, tzinfo=datetime.timezone.utc)
    raw = b"Subject: flags\nFrom: a@example.test\n\nLF only body\n"
    uid1 = mailserver.deliver("alice", raw, folder, flags=["\\Seen", "$Forwarded"],
                              internaldate=when)
    uid2 = mailserver.deliver("alice", raw, folder)
    before = mailserver.status("alice", folder)
    assert before["MESSAGES"] == 2 and before["UIDNEXT"] == uid2 + 1
    assert before["UNSEEN"] == 1 and before["UIDVALIDITY"] > 0
    m1, m2 = mailserver.messages("alice", folder)
    assert (m1.uid, m2.uid) == (uid1, uid2)
    assert {"\\Seen", "$Forwarded"} <= m1.flags and "\\Seen" not in m2.flags
    assert m1.internaldate == when
    assert m1.raw == raw.replace(b"\n", b"\r\n")  # IMAP transmits CRLF
    mailserver.set_flags("alice", folder, uid2, ["\\Flagged", "\\Answered"])
    mailserver.clear_flags("alice", folder, uid1, "\\Seen")
    m1, m2 = mailserver.messages("alice", folder)
    assert "\\Seen" not in m1.flags and {"\\Flagged", "\\Answered"} <= m2.flags
    mailserver.expunge("alice", folder, uid1)
    after = mailserver.status("alice", folder)
    assert after["MESSAGES"] == 1 and after["HIGHESTMODSEQ"] > before["HIGHESTMODSEQ"]
    assert [m.uid for m in mailserver.messages("alice", folder)] == [uid2]
    out = mailserver.doveadm("-f", "flow", "mailbox", "list", "-u", "alice").stdout
    assert folder in out


def test_seed_2000_corpus_messages(mailserver):
    msgs = corpus.generate(2000, folders=["Seeded"], seed=3, big=False)
    t0 = time.monotonic()
    uids = mailserver.seed("alice", "Seeded", msgs)
    seconds = time.monotonic() - t0
    assert seconds < 30
    st = mailserver.status("alice", "Seeded")
    assert st["MESSAGES"] == 2000 and uids == list(range(1, 2001))
    assert st["UNSEEN"] == sum("\\Seen" not in m.flags for m in msgs)
    listed = mailserver.messages("alice", "Seeded", body=False)
    for m, got in zip(msgs, listed):
        assert set(m.flags) == got.flags - {"\\Recent"}, got.uid
        assert got.internaldate == m.internaldate.replace(microsecond=0)
    for uid in (1, 777, 2000):
        got = mailserver.message("alice", "Seeded", uid)
        assert got.raw == corpus.crlf(msgs[uid - 1].raw)
    # A second batch continues the UIDs; an IMAP client sees them at once.
    more = mailserver.seed("alice", "Seeded", [b"Subject: late\n\nlate\n"])
    assert more == [2001]


def test_restart_keeps_mail_ports_and_ca(mailserver):
    mid, raw = unique_message("before restart")
    mailserver.lmtp_send("bob", raw)
    before = find(mailserver, "bob", mid)
    ports = (mailserver.imaps_port, mailserver.smtp_port, mailserver.lmtp_port)
    fingerprint = mailserver.fingerprint
    old = set(mailserver.processes())
    mailserver.restart()
    assert (mailserver.imaps_port, mailserver.smtp_port, mailserver.lmtp_port) == ports
    assert mailserver.fingerprint == fingerprint
    assert not old & set(mailserver.processes())
    after = find(mailserver, "bob", mid)
    assert (after.uid, after.raw) == (before.uid, before.raw)
    mid2, raw2 = unique_message("after restart")
    with mailserver.smtp("alice") as conn:
        conn.sendmail("alice@example.test", ["bob@example.test"], raw2)
    find(mailserver, "bob", mid2)


# ----- no process outlives a server ------------------------------------------------------------

def pgrep(pattern):
    res = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in res.stdout.split()]


def test_stop_leaves_no_process(mailserver_factory):
    srv = mailserver_factory(capabilities="o365")
    root = srv.root
    assert pgrep(srv.dovecot_conf) and pgrep(srv.postfix_dir)
    with srv.imap("alice") as conn:  # a live session must not survive either
        conn.select("INBOX")
        srv.stop()
    assert not pgrep(srv.dovecot_conf) and not pgrep(srv.postfix_dir)
    assert not processes_under(root)
    srv.close()
    assert not os.path.exists(root)


def test_killed_test_process_leaves_no_process(tmp_path):
    """The strongest case: the process that started the server dies by SIGKILL."""
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(os.path.dirname(os.path.dirname(__file__)))!r})
        from harness.mailserver import MailServer
        srv = MailServer().start()
        print(srv.root, flush=True)
        time.sleep(600)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    root = proc.stdout.readline().strip()
    assert root and processes_under(root)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while processes_under(root):
        assert time.monotonic() < deadline, processes_under(root)
        time.sleep(0.05)
    reap_stale_instances(os.path.dirname(root))
    assert not os.path.exists(root)


def test_harness_refuses_unknown_profile():
    from harness.mailserver import MailServer
    with pytest.raises(ValueError):
        MailServer(capabilities="exchange2003")


# ----- mf_env ---------------------------------------------------------------------------------

def test_mf_env_shape(mf_env, mailserver):
    assert mf_env.env["HOME"] == str(mf_env.home)
    for key, path in (("XDG_CONFIG_HOME", mf_env.config_home),
                      ("XDG_STATE_HOME", mf_env.state_home),
                      ("XDG_RUNTIME_DIR", mf_env.runtime_dir)):
        assert mf_env.env[key] == str(path) and path.is_dir()
        assert str(path).startswith(str(mf_env.home))
    path = mf_env.write_config()
    assert path == mf_env.config_home / "mailferry" / "config"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert f"port = {mailserver.imaps_port};" in text
    assert f'ca_file = "{mailserver.ca_file}";' in text
    assert f'password = "{mailserver.users["alice"]}";' in text
    path = mf_env.write_config(
        accounts=[mf_env.account("work", tls="starttls", password_command=True,
                                 smtp=True, imap={"folders": ["*", "!Trash"]},
                                 special_use_names=True),
                  mf_env.account("pop", user="bob", protocol="pop3", tls="none")],
        general={"log_level": "debug"}, mode=0o640)
    text = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o640
    assert text.startswith("general = {\n")
    assert f"port = {mailserver.imap_port};" in text and 'tls = "starttls";' in text
    assert 'folders = [ "*", "!Trash" ];' in text and "special_use_names = true;" in text
    assert f"port = {mailserver.smtp_port};" in text
    assert f"port = {mailserver.pop3_port};" in text
    assert mailserver.users["alice"] not in text  # it is behind password_command
    cmd = text.split('password_command = "')[1].split('"')[0]
    assert subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout == \
        mailserver.users["alice"]


def test_mailferryd_runner(mf_env):
    if not (mf_env.build_dir / "daemon" / "mailferryd").exists():
        pytest.skip("mailferryd is not built yet")
    rc, out, err = mf_env.mailferryd("--version", timeout=30)
    assert rc == 0 and (out or err)


def test_wait_for_messages_times_out_with_context(mailserver):
    with pytest.raises(HarnessError) as exc:
        mailserver.wait_for_messages("bob", "Trash", count=1, timeout=0.2)
    assert mailserver.root in str(exc.value)
