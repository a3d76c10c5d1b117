"""pytest plumbing of the integration tests.

Fixtures
- mailserver (module scope): a started harness.mailserver.MailServer, stopped after the
  file's last test (also on failure). Choose its profile per file or per test:
      pytestmark = pytest.mark.mailserver(capabilities="gmail", compress=False)
      @pytest.mark.parametrize("capability_profile", ["full", "gmail", "o365"], indirect=True)
  (one server per distinct profile; pytest groups the tests so each starts once).
- capability_profile (module scope): the profile in force ("full" unless set as above).
- mailserver_factory: start extra servers inside one test, closed at its end.
- mf_env: a private HOME with XDG_CONFIG_HOME, XDG_STATE_HOME and XDG_RUNTIME_DIR inside,
  a Maildir root, write_config(), mailferryd(), mailferryctl() and daemon(); see MfEnv.

A failed test gets a "mail server" section in its report with the server's ports and log
paths and the tail of its logs; the server's directory is then kept for a post-mortem
(set MF_KEEP_SERVER=1 to keep it always). Each daemon the test started (mf_env.daemon) adds
the tail of its log.
"""

import os
import pathlib
import signal
import subprocess
import sys

import pytest

TESTS_DIR = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS_DIR))

from harness.mailserver import MailServer  # noqa: E402

REPO_DIR = TESTS_DIR.parent
DEFAULT_TIMEOUT = 300  # seconds per test; pytest-timeout ends a hung test


def pytest_configure(config):
    config.addinivalue_line("markers", "mailserver(**options): MailServer options of the "
                                       "module's server (capabilities, compress, users)")
    config.addinivalue_line("markers", "timeout(seconds): pytest-timeout limit")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))


# ----- mail server ------------------------------------------------------------------------

def _server_options(request):
    marker = request.node.get_closest_marker("mailserver")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture(scope="module")
def capability_profile(request):
    if hasattr(request, "param"):
        return request.param
    return _server_options(request).get("capabilities", "full")


@pytest.fixture(scope="module")
def mailserver(request, capability_profile):
    options = _server_options(request)
    options["capabilities"] = capability_profile
    srv = MailServer(**options)
    srv.failed = False
    try:
        srv.start()
        yield srv
    finally:
        srv.close(keep=srv.failed or None)


@pytest.fixture
def mailserver_factory():
    started = []

    def make(**options):
        srv = MailServer(**options)
        srv.failed = False
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        srv.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    servers = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, MailServer)]
    env = getattr(item, "funcargs", {}).get("mf_env")
    if isinstance(env, MfEnv) and env.server not in servers:
        servers.append(env.server)
    for srv in servers:
        if srv.root:
            srv.failed = True
            report.sections.append(("mail server", srv.describe() + "\n" + srv.log_tail(40)))
    for n, d in enumerate(env._daemons if isinstance(env, MfEnv) else []):
        tail = d.stderr().splitlines()[-80:]
        report.sections.append((f"mailferryd {n} (last {len(tail)} lines)", "\n".join(tail)))


# ----- mailferry environment --------------------------------------------------------------

def _libconfig_value(value, indent):
    pad = "  " * indent
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") \
                   .replace("\t", "\\t").replace("\r", "\\r")
        return f'"{text}"'
    if isinstance(value, dict):
        inner = "".join(f"{pad}  {k} = {_libconfig_value(v, indent + 1)};\n"
                        for k, v in value.items())
        return "{\n" + inner + pad + "}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, dict) for v in value):
            items = ",\n".join(f"{pad}  {_libconfig_value(v, indent + 1)}" for v in value)
            return "(\n" + items + "\n" + pad + ")"
        return "[ " + ", ".join(_libconfig_value(v, indent) for v in value) + " ]"
    raise TypeError(f"no libconfig form for {value!r}")


def libconfig(settings):
    """{name: value} -> libconfig text (dict = group, list of dicts = list, list = array)."""
    return "".join(f"{k} = {_libconfig_value(v, 0)};\n" for k, v in settings.items())


class Daemon:
    """A mailferryd running in the background (see MfEnv.daemon)."""

    def __init__(self, proc, stdout_path, stderr_path):
        self.proc = proc
        self.stdout_path, self.stderr_path = stdout_path, stderr_path

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        return pathlib.Path(self.stderr_path).read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal the daemon and wait; returns its exit status. SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class MfEnv:
    """A private user environment for running mailferryd against the mail server.

    home/            HOME (XDG_CONFIG_HOME=home/.config, XDG_STATE_HOME=home/.local/state,
                     XDG_RUNTIME_DIR=home/run, mode 0700)
    home/Mail/NAME   each account's Maildir root by default (maildir_root = home/Mail)
    """

    def __init__(self, tmp_path, server):
        self.server = server
        self.home = tmp_path / "home"
        self.config_home = self.home / ".config"
        self.state_home = self.home / ".local" / "state"
        self.runtime_dir = self.home / "run"
        self.maildir_root = self.home / "Mail"
        self.secrets_dir = self.home / ".secrets"
        for d in (self.home, self.config_home, self.state_home, self.runtime_dir,
                  self.maildir_root, self.secrets_dir):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
        self.config_path = self.config_home / "mailferry" / "config"
        self.env = {
            "HOME": str(self.home),
            "USER": "root",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "XDG_CONFIG_HOME": str(self.config_home),
            "XDG_STATE_HOME": str(self.state_home),
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
        }
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MF_BUILD_DIR"):
            if name in os.environ:
                self.env[name] = os.environ[name]
        self.build_dir = pathlib.Path(os.environ.get("MF_BUILD_DIR", REPO_DIR / "build"))
        self._daemons = []

    # ----- config ------------------------------------------------------------------

    def password_command(self, user):
        """A command printing `user`'s password (read from a 0600 file, never in argv)."""
        path = self.secrets_dir / user
        path.write_text(self.server.users[user])
        path.chmod(0o600)
        return f"cat {path}"

    def _auth(self, user, password_command):
        if password_command:
            return {"user": user, "password_command": self.password_command(user)}
        return {"user": user, "password": self.server.users[user]}

    def imap_block(self, user="alice", tls="implicit", password_command=False, **extra):
        """An account's imap block for the mail server; extra keys are added as given."""
        srv = self.server
        port = srv.imaps_port if tls == "implicit" else srv.imap_port
        block = {"host": srv.host, "port": port, "tls": tls, "ca_file": srv.ca_file}
        block.update(self._auth(user, password_command))
        block.update(extra)
        return block

    def pop3_block(self, user="alice", tls="implicit", password_command=False, **extra):
        srv = self.server
        port = srv.pop3s_port if tls == "implicit" else srv.pop3_port
        block = {"host": srv.host, "port": port, "tls": tls, "ca_file": srv.ca_file}
        block.update(self._auth(user, password_command))
        block.update(extra)
        return block

    def smtp_block(self, user="alice", tls="starttls", password_command=False, **extra):
        srv = self.server
        port = srv.smtps_port if tls == "implicit" else srv.smtp_port
        block = {"host": srv.host, "port": port, "tls": tls, "ca_file": srv.ca_file}
        block.update(self._auth(user, password_command))
        block.update(extra)
        return block

    def account(self, name="test", user="alice", protocol="imap", tls="implicit",
                password_command=False, smtp=False, **extra):
        """One account dict: maildir under maildir_root, a `protocol` block for `user`,
        optionally an smtp block (smtp=True or a dict of smtp keys). extra: account keys,
        or imap={...}/pop3={...} to add keys to the server block."""
        block_extra = extra.pop(protocol, {})
        make = self.imap_block if protocol == "imap" else self.pop3_block
        acct = {"name": name, "maildir": str(self.maildir_root / name)}
        acct[protocol] = make(user, tls, password_command, **block_extra)
        if smtp:
            acct["smtp"] = self.smtp_block(user, password_command=password_command,
                                           **(smtp if isinstance(smtp, dict) else {}))
        acct.update(extra)
        return acct

    def write_config(self, accounts=None, general=None, mode=0o600, path=None, text=None):
        """Write the config (default: $XDG_CONFIG_HOME/mailferry/config, where mailferryd
        looks without -c) and return its path. accounts: list of account dicts (default:
        one IMAPS account "test" for alice; see account()); general: the general group
        (omitted when None); text: write this text verbatim instead."""
        path = pathlib.Path(path) if path else self.config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            settings = {}
            if general is not None:
                settings["general"] = general
            settings["accounts"] = [self.account()] if accounts is None else list(accounts)
            text = libconfig(settings)
        path.write_text(text)
        path.chmod(mode)
        return path

    def maildir(self, account="test", folder="INBOX"):
        """The local Maildir folder of an account (verbatim layout)."""
        return self.maildir_root / account / folder

    # ----- running mailferry -------------------------------------------------------

    def binary(self, name):
        sub = "daemon" if name == "mailferryd" else "ctl"
        path = self.build_dir / sub / name
        if not path.exists():
            pytest.fail(f"{path} is not built (MF_BUILD_DIR={self.build_dir})")
        return path

    def run(self, name, *args, timeout=60, input=None):
        res = subprocess.run([str(self.binary(name)), *map(str, args)], env=self.env,
                             cwd=self.home, input=input, capture_output=True, text=True,
                             timeout=timeout)
        return res.returncode, res.stdout, res.stderr

    def mailferryd(self, *args, timeout=60, input=None):
        """Run mailferryd ARGS to completion; returns (returncode, stdout, stderr)."""
        return self.run("mailferryd", *args, timeout=timeout, input=input)

    def mailferryctl(self, *args, timeout=60, input=None):
        return self.run("mailferryctl", *args, timeout=timeout, input=input)

    def daemon(self, *args):
        """Start mailferryd ARGS in the background (stopped at the end of the test);
        returns a Daemon. Output goes to files in HOME (Daemon.stderr())."""
        n = len(self._daemons)
        out, err = self.home / f"mailferryd.{n}.out", self.home / f"mailferryd.{n}.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen([str(self.binary("mailferryd")), *map(str, args)],
                                    env=self.env, cwd=self.home, stdin=subprocess.DEVNULL,
                                    stdout=fo, stderr=fe)
        daemon = Daemon(proc, out, err)
        self._daemons.append(daemon)
        return daemon

    def close(self):
        for d in self._daemons:
            d.stop(timeout=10)


@pytest.fixture
def mf_env(tmp_path, mailserver):
    env = MfEnv(tmp_path, mailserver)
    yield env
    env.close()
