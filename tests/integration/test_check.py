"""`mailferryd --check` against the harness's Dovecot: what the user sees.

Each test writes a config, runs `mailferryd --check` and checks the exit status and the
exact shape of the lines on stdout (one per account, in config order, with the server's
capabilities and folder count as the server itself tells them) and stderr (one per failed
account, naming it and saying why; config errors as FILE:LINE: key: message, with nothing
attempted). The last group runs with -vv (protocol traces) and checks that no password,
token or AUTHENTICATE payload reaches the output, in any encoding, while the commands do,
also against a server without SASL-IR and LITERAL+ (continuations, synchronizing literals).
"""

import base64
import binascii
import re
import secrets
import socket
import time

import pytest

from harness import imapwire
from harness.mailserver import MailServer

# carol's password needs quoting in a LOGIN command; dave's is 8-bit, so it goes as a
# literal. Both are random so that finding them in the output means a leak.
USERS = {
    "alice": f"alice-{secrets.token_urlsafe(12)}",
    "bob": f"bob-{secrets.token_urlsafe(12)}",
    "carol": f'c a"r\\ol {secrets.token_urlsafe(9)}',
    "dave": f"dävé-{secrets.token_urlsafe(9)}",
}

pytestmark = pytest.mark.mailserver(users=USERS, reuse_processes=True)

ACCOUNT_OK = re.compile(
    r"^(?P<name>[\w-]+): imap (?P<server>127\.0\.0\.1:\d+|localhost:\d+) ok: "
    r"(?P<security>TLSv1\.[23] \S+|plaintext), user (?P<user>\w+), (?P<folders>\d+) folders, "
    r"capabilities: (?P<caps>\S+( \S+)*)$")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "BUG at ")


@pytest.fixture(scope="module", autouse=True)
def alice_folders(mailserver):
    """Folders beyond the special-use ones: a nested one (its parent is \\Noselect) and a
    non-ASCII one, so the folder count is not a constant."""
    for name in ("Projects/mailferry", "Café"):
        mailserver.create_folder("alice", name)


def run_check(env, *args, timeout=60):
    t0 = time.monotonic()
    rc, out, err = env.mailferryd("--check", *args, timeout=timeout)
    for mark in SANITIZER_MARKS:
        assert mark not in err, err
    return rc, out, err, time.monotonic() - t0


def lines(text):
    return text.splitlines()


def server_view(server, user):
    """(capabilities after login, selectable folder names) as the server tells imaplib.
    AUTHENTICATE PLAIN: imaplib's LOGIN cannot send dave's 8-bit password."""
    conn = server.imap_connect()
    try:
        payload = f"\0{user}\0{server.users[user]}".encode()
        assert conn.authenticate("PLAIN", lambda _: payload)[0] == "OK"
        typ, caps = conn.capability()
        assert typ == "OK"
        folders = imapwire.parse_list(imapwire.check(conn.list('""', '"*"'), "LIST"))
    finally:
        conn.logout()
    selectable = [f.name for f in folders if not {"\\Noselect", "\\NonExistent"} & f.attributes]
    return set(caps[0].decode().upper().split()), selectable


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_ok_line(line, server, name="test", user="alice", tls=True,
                   required=("IMAP4rev1", "IDLE", "UIDPLUS")):
    m = ACCOUNT_OK.match(line)
    assert m, f"not an account OK line: {line!r}"
    assert m["name"] == name and m["user"] == user
    assert (m["security"] != "plaintext") == tls, line
    server_caps, folders = server_view(server, user)
    assert int(m["folders"]) == len(folders), (line, folders)
    caps = m["caps"].split()
    assert set(required) <= set(caps), line
    assert {c.upper() for c in caps} <= server_caps, line
    return m


def plaintext_account(env, **extra):
    acct = env.account(tls="none", **extra)
    del acct["imap"]["ca_file"]
    return acct


def with_command(acct, command):
    """acct with password_command = command instead of its password."""
    del acct["imap"]["password"]
    acct["imap"]["password_command"] = command
    return acct


def token_account(env, server, auth, token=None, name="test"):
    path = env.secrets_dir / f"token-{auth}"
    path.write_text((token or server.oauth_tokens["alice"]) + "\n")
    path.chmod(0o600)
    return with_command(env.account(name, imap={"auth": auth}), f"cat {path}")


# ----- success --------------------------------------------------------------------------

def test_implicit_tls_with_ca_file(mf_env, mailserver):
    mf_env.write_config()  # the default path: no -c needed
    rc, out, err, _ = run_check(mf_env)
    assert (rc, err) == (0, "")
    [line] = lines(out)
    m = assert_ok_line(line, mailserver)
    assert m["server"] == f"127.0.0.1:{mailserver.imaps_port}"


def test_starttls_on_the_plain_port(mf_env, mailserver):
    path = mf_env.write_config([mf_env.account(tls="starttls")])
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert (rc, err) == (0, "")
    [line] = lines(out)
    m = assert_ok_line(line, mailserver)
    assert m["server"] == f"127.0.0.1:{mailserver.imap_port}"


def test_no_tls_to_loopback(mf_env, mailserver):
    path = mf_env.write_config([plaintext_account(mf_env)])
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert (rc, err) == (0, "")
    [line] = lines(out)
    m = assert_ok_line(line, mailserver, tls=False)
    assert m["server"] == f"127.0.0.1:{mailserver.imap_port}"


def test_localhost_name_is_verified(mf_env, mailserver):
    """A DNS name (checked against the certificate's DNS entries, sent as SNI) instead of
    an address; localhost may resolve to ::1 first, where nothing listens."""
    path = mf_env.write_config([mf_env.account(imap={"host": "localhost"})])
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert (rc, err) == (0, "")
    [line] = lines(out)
    assert assert_ok_line(line, mailserver)["server"] == f"localhost:{mailserver.imaps_port}"


def test_two_accounts_in_config_order(mf_env, mailserver):
    # bob's check (plaintext, no TLS handshake) tends to finish first: the output keeps
    # the config's order anyway.
    path = mf_env.write_config([mf_env.account("zeta", user="alice"),
                                plaintext_account(mf_env, name="alpha", user="bob")])
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert (rc, err) == (0, "")
    first, second = lines(out)
    assert_ok_line(first, mailserver, name="zeta", user="alice")
    assert_ok_line(second, mailserver, name="alpha", user="bob", tls=False)


def test_fingerprint_pin_without_ca_file(mf_env, mailserver):
    acct = mf_env.account(imap={"fingerprint": mailserver.pin})
    del acct["imap"]["ca_file"]
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, err) == (0, "")
    assert_ok_line(out.rstrip("\n"), mailserver)


@pytest.mark.parametrize("how", ["echo", "file", "no-newline", "crlf-two-lines"])
def test_password_command(mf_env, mailserver, how):
    """The first line of the command's stdout is the password."""
    pw = USERS["alice"]
    if how == "file":
        acct = mf_env.account(password_command=True)
    else:
        command = {"echo": f"echo {pw}", "no-newline": f"printf %s {pw}",
                   "crlf-two-lines": f"printf '%s\\r\\nsecond line\\n' {pw}"}[how]
        acct = with_command(mf_env.account(), command)
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, err) == (0, "")
    assert_ok_line(out.rstrip("\n"), mailserver)


@pytest.mark.parametrize("auth", ["xoauth2", "oauthbearer"])
def test_oauth_token(mf_env, mailserver, auth):
    acct = token_account(mf_env, mailserver, auth)
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, err) == (0, "")
    assert_ok_line(out.rstrip("\n"), mailserver)


@pytest.mark.parametrize("user", ["alice", "carol", "dave"])
def test_auth_login(mf_env, mailserver, user):
    """The LOGIN command: carol's password is a quoted string, dave's a literal."""
    path = mf_env.write_config([mf_env.account(user=user, imap={"auth": "login"})])
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert (rc, err) == (0, "")
    assert_ok_line(out.rstrip("\n"), mailserver, user=user)


@pytest.mark.parametrize("user", ["carol", "dave"])
def test_auth_plain_odd_passwords(mf_env, mailserver, user):
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([mf_env.account(user=user)]))
    assert (rc, err) == (0, "")
    assert_ok_line(out.rstrip("\n"), mailserver, user=user)


# ----- failures of one server -----------------------------------------------------------

class Listener:
    """A listening socket that records whether anybody connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connected(self):
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def failure_line(err, name="test"):
    [line] = lines(err)
    assert line.startswith(f"{name}: imap "), line
    return line


@pytest.mark.parametrize("auth", ["auto", "login"])
def test_wrong_password(mf_env, mailserver, auth):
    acct = mf_env.account(imap={"password": "not-the-password", "auth": auth})
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    line = failure_line(err)
    assert re.match(rf"test: imap 127\.0\.0\.1:{mailserver.imaps_port}: .*"
                    r"NO \[AUTHENTICATIONFAILED\] Authentication failed", line), line
    assert "not-the-password" not in err


def test_wrong_oauth_token(mf_env, mailserver):
    acct = token_account(mf_env, mailserver, "xoauth2", token="oauth-wrong-token")
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    assert "[AUTHENTICATIONFAILED]" in failure_line(err)


def test_one_bad_account_of_two(mf_env, mailserver):
    path = mf_env.write_config([
        mf_env.account("good"),
        mf_env.account("bad", imap={"password": "not-the-password"})])
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert rc == 1
    [line] = lines(out)
    assert_ok_line(line, mailserver, name="good")
    assert "[AUTHENTICATIONFAILED]" in failure_line(err, "bad")


def test_untrusted_certificate(mf_env, mailserver):
    acct = mf_env.account()
    del acct["imap"]["ca_file"]  # the system store does not know the harness CA
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    line = failure_line(err)
    m = re.match(rf"test: imap 127\.0\.0\.1:{mailserver.imaps_port}: "
                 r"certificate verify failed: (?P<why>.+)$", line)
    assert m, line
    assert "issuer" in m["why"] or "self-signed" in m["why"] or "self signed" in m["why"], line


def test_untrusted_certificate_after_starttls(mf_env, mailserver):
    acct = mf_env.account(tls="starttls")
    del acct["imap"]["ca_file"]
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    assert re.match(rf"test: imap 127\.0\.0\.1:{mailserver.imap_port}: "
                    r"certificate verify failed: \S", failure_line(err))


def test_fingerprint_mismatch(mf_env, mailserver):
    wrong = "sha256:" + ("0" * 64 if mailserver.fingerprint != "0" * 64 else "1" * 64)
    acct = mf_env.account(imap={"fingerprint": wrong})
    del acct["imap"]["ca_file"]
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    line = failure_line(err)
    assert re.match(rf"test: imap 127\.0\.0\.1:{mailserver.imaps_port}: "
                    r"certificate fingerprint mismatch: ", line), line
    assert f"sha256:{mailserver.fingerprint}" in line  # what to pin, if the change is wanted


def test_password_command_fails(mf_env, mailserver):
    acct = with_command(mf_env.account(),
                        "echo 'gpg: decryption failed: No secret key' >&2; exit 3")
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    assert failure_line(err) == ("test: imap password_command for 127.0.0.1: exited with "
                                 "status 3: gpg: decryption failed: No secret key")


def test_password_command_prints_nothing(mf_env, mailserver):
    acct = with_command(mf_env.account(), "true")
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    assert failure_line(err) == ("test: imap password_command for 127.0.0.1: printed "
                                 "nothing on stdout")


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_password_command_hangs(mf_env, mailserver):
    """Cut by the server's timeout; the command's children are killed with it."""
    pidfile = mf_env.home / "hung.pid"
    acct = with_command(mf_env.account(imap={"timeout": 1}),
                        f"sleep 60 & echo $! > {pidfile}; wait")
    rc, out, err, seconds = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    assert failure_line(err) == "test: imap password_command for 127.0.0.1: timed out after 1 s"
    assert 0.9 < seconds < 5, seconds
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid), "the command's background child outlived the timeout"


def test_nothing_listens(mf_env, mailserver):
    port = free_port()
    rc, out, err, seconds = run_check(mf_env, "-c", mf_env.write_config(
        [mf_env.account(imap={"port": port})]))
    assert (rc, out) == (1, "")
    assert failure_line(err) == f"test: imap 127.0.0.1:{port}: connect: connection refused"
    assert seconds < 5


def test_password_command_killed(mf_env, mailserver):
    acct = with_command(mf_env.account(), "kill -9 $$")
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    assert failure_line(err) == ("test: imap password_command for 127.0.0.1: killed by "
                                 "signal 9 (Killed)")


def test_name_does_not_resolve(mf_env, mailserver):
    acct = mf_env.account(imap={"host": "mailferry-test.invalid", "timeout": 3})
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    line = failure_line(err)
    assert re.fullmatch(rf"test: imap mailferry-test\.invalid:{mailserver.imaps_port}: "
                        r"(cannot resolve mailferry-test\.invalid: .+|"
                        r"timed out after 3 s resolving the name)", line), line


@pytest.mark.parametrize("tls, stage", [("none", "no answer from the server for 1 s"),
                                        ("starttls", "no answer from the server for 1 s"),
                                        ("implicit", "timed out after 1 s in the TLS handshake")])
def test_server_that_never_answers(mf_env, listener, tls, stage):
    """The kernel accepts the connection (the listener never does): the timeout ends it."""
    acct = mf_env.account(tls=tls, imap={"port": listener.port, "timeout": 1})
    rc, out, err, seconds = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    assert failure_line(err) == f"test: imap 127.0.0.1:{listener.port}: {stage}"
    assert 0.9 < seconds < 5, seconds


def test_implicit_tls_on_the_plaintext_port(mf_env, mailserver):
    acct = mf_env.account(imap={"port": mailserver.imap_port, "timeout": 5})
    rc, out, err, seconds = run_check(mf_env, "-c", mf_env.write_config([acct]))
    assert (rc, out) == (1, "")
    assert re.match(rf"test: imap 127\.0\.0\.1:{mailserver.imap_port}: TLS handshake failed: ",
                    failure_line(err))
    assert seconds < 4


@pytest.mark.parametrize("what, reason", [
    ("missing", "No such file or directory"),
    ("not-pem", "no certificate or crl found"),
    ("directory", "it is a directory, not a file of PEM certificates"),
])
def test_bad_ca_file(mf_env, mailserver, what, reason):
    path = {"missing": mf_env.home / "no-such-ca.pem", "not-pem": mf_env.home / "notes.txt",
            "directory": mf_env.home}[what]
    if what == "not-pem":
        path.write_text("this is not a certificate\n")
    rc, out, err, _ = run_check(mf_env, "-c", mf_env.write_config(
        [mf_env.account(imap={"ca_file": str(path)})]))
    assert (rc, out) == (1, "")
    assert failure_line(err) == (f"test: imap 127.0.0.1:{mailserver.imaps_port}: cannot load "
                                 f"CA file {path}: {reason}")


# ----- config errors: exit 2, nothing attempted -----------------------------------------

def untouched_account(env, listener, **imap):
    """An account whose password_command leaves a trace and whose server is a listener."""
    marker = env.home / "password_command.ran"
    acct = env.account(tls="none", imap=dict({"port": listener.port, "timeout": 2}, **imap))
    del acct["imap"]["ca_file"]
    return with_command(acct, f"touch {marker}; echo x"), marker


def line_of(path, needle):
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if needle in text:
            return n
    raise AssertionError(f"{needle!r} not in {path}")


def assert_nothing_attempted(listener, marker, out):
    assert out == ""
    time.sleep(0.05)
    assert not listener.connected(), "a server was contacted despite the config error"
    assert not marker.exists(), "password_command ran despite the config error"


def test_unknown_key(mf_env, listener):
    acct, marker = untouched_account(mf_env, listener, colour="blue")
    path = mf_env.write_config([acct])
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert rc == 2
    assert err == f"{path}:{line_of(path, 'colour')}: accounts[test].imap.colour: unknown key\n"
    assert_nothing_attempted(listener, marker, out)


def test_syntax_error(mf_env, listener):
    acct, marker = untouched_account(mf_env, listener)
    path = mf_env.write_config([acct])
    text = path.read_text().replace('tls = "none";', 'tls == "none";', 1)
    path.write_text(text)
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert rc == 2
    where = re.escape(f"{path}:{line_of(path, 'tls ==')}")
    assert re.fullmatch(rf"{where}: syntax error(: .+)?\n", err), err
    assert_nothing_attempted(listener, marker, out)


def test_password_readable_by_others(mf_env, listener):
    acct, marker = untouched_account(mf_env, listener)
    del acct["imap"]["password_command"]
    acct["imap"]["password"] = "secret-in-file"
    path = mf_env.write_config([acct], mode=0o644)
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert rc == 2
    assert err == (f"{path}: holds a password but is readable by group or others; "
                   f"run: chmod 600 {path}\n")
    assert_nothing_attempted(listener, marker, out)
    # The same file with password_command instead is fine to share.
    acct, _ = untouched_account(mf_env, listener)
    path = mf_env.write_config([acct], mode=0o644)
    listener.close()
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert rc == 1 and "connection refused" in err


def test_plaintext_password_to_remote_host(mf_env, listener):
    acct, marker = untouched_account(mf_env, listener, host="192.0.2.1")
    path = mf_env.write_config([acct])
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert rc == 2
    assert err == (f"{path}:{line_of(path, 'tls = ')}: accounts[test].imap.tls: \"none\" "
                   f"would send the password unencrypted to \"192.0.2.1\"; use \"implicit\" "
                   f"or \"starttls\", or set allow_plaintext = true\n")
    assert_nothing_attempted(listener, marker, out)


def test_missing_config_file(mf_env):
    path = mf_env.home / "nowhere" / "config"
    rc, out, err, _ = run_check(mf_env, "-c", path)
    assert (rc, out) == (2, "")
    [line] = lines(err)
    assert line.startswith(str(path)) and "No such file" in line, line


# ----- secrets never reach a log ---------------------------------------------------------

B64_RUN = re.compile(r"[A-Za-z0-9+/]{6,}={0,2}")


def decoded_runs(text):
    """Every base64-looking run of text, decoded at each of its alignments."""
    for m in B64_RUN.finditer(text):
        run = m.group().rstrip("=")
        for start in range(4):
            chunk = run[start:]
            chunk = chunk[:len(chunk) - len(chunk) % 4]
            try:
                yield base64.b64decode(chunk)
            except (binascii.Error, ValueError):
                pass


def assert_secret_absent(secret, text):
    assert secret not in text, "the secret itself is in the output"
    raw = secret.encode()
    # A 3-byte-aligned piece of the secret shows in base64 whatever its offset in a
    # payload; 9 bytes cannot match by chance.
    for data in decoded_runs(text):
        for i in range(0, max(1, len(raw) - 8)):
            assert raw[i:i + 9] not in data, "the secret is in the output, base64-encoded"


def assert_redacted_trace(env, acct, secret, verb, payloads=(), rc=0):
    """Run --check -vv: the trace shows the session and the login command with its
    arguments redacted; neither secret nor any payload appears, plain or base64."""
    rc_, out, err, _ = run_check(env, "-vv", "-c", env.write_config([acct]))
    assert rc_ == rc, err
    assert re.search(r"S: \* OK ", err), err
    if rc == 0:
        assert re.search(r"C: A\d+ LIST ", err), err
    assert re.search(rf"C: A\d+ {verb} <redacted>$", err, re.M), err
    output = out + err
    assert_secret_absent(secret, output)
    for payload in payloads:
        assert base64.b64encode(payload.encode()).decode() not in output
    return err


@pytest.mark.parametrize("case", ["plain", "login-command", "login-quoted", "login-literal",
                                  "xoauth2", "oauthbearer", "wrong-password"])
def test_trace_redacts_secrets(mf_env, mailserver, case):
    user = {"login-quoted": "carol", "login-literal": "dave"}.get(case, "alice")
    secret, payloads, rc = USERS[user], [], 0
    if case in ("xoauth2", "oauthbearer"):
        acct = token_account(mf_env, mailserver, case)
        secret = mailserver.oauth_tokens["alice"]
        verb = "AUTHENTICATE"
        if case == "xoauth2":
            payloads.append(f"user=alice\x01auth=Bearer {secret}\x01\x01")
    elif case in ("plain", "wrong-password"):
        acct = mf_env.account(imap={"auth": "plain"})
        verb = "AUTHENTICATE"
        if case == "wrong-password":
            secret, rc = f"wrong-{secrets.token_urlsafe(12)}", 1
            acct["imap"]["password"] = secret
        payloads.append(f"\0alice\0{secret}")
    else:
        acct = mf_env.account(user=user, imap={"auth": "login"})
        verb = "LOGIN"
    assert_redacted_trace(mf_env, acct, secret, verb, payloads, rc)


@pytest.fixture(scope="module")
def bare_server():
    """A server with the bare minimum (IMAP4rev1 LOGIN-REFERRALS): no SASL-IR, so
    AUTHENTICATE waits for "+" before its payload, and no LITERAL+, so a literal waits
    for "+" before its bytes."""
    srv = MailServer(capabilities="imap4rev1", users=USERS)
    try:
        yield srv.start()
    finally:
        srv.close()


@pytest.mark.parametrize("case", ["plain", "login-literal"])
def test_trace_redacts_continuations(mf_env, bare_server, case):
    user, auth = ("dave", "login") if case == "login-literal" else ("alice", "plain")
    srv = bare_server
    acct = {"name": "test", "maildir": str(mf_env.maildir_root / "test"),
            "imap": {"host": srv.host, "port": srv.imaps_port, "tls": "implicit",
                     "ca_file": srv.ca_file, "user": user, "password": USERS[user],
                     "auth": auth}}
    verb = "LOGIN" if auth == "login" else "AUTHENTICATE"
    payloads = [f"\0alice\0{USERS[user]}"] if auth == "plain" else []
    err = assert_redacted_trace(mf_env, acct, USERS[user], verb, payloads)
    if auth == "plain":  # the payload went as its own line, after the server's "+"
        assert re.search(r"S: \+ ?\n.* C: <redacted>$", err, re.M), err
    else:  # the literal waited for "+ OK"
        assert re.search(r"C: A\d+ LOGIN <redacted>\n.* S: \+ ", err, re.M), err
    [line] = lines(run_check(mf_env, "-c", mf_env.config_path)[1])
    assert_ok_line(line, srv, user=user, required=("IMAP4rev1",))
