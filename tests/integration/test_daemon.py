"""The daemon skeleton (mailferryd with no mode flag) and the command-line surface of
mailferryd and mailferryctl: start and stop lines, signals (TERM and INT stop it cleanly,
HUP reloads the config and survives a broken one), the log format (journal priority
prefixes under systemd, timestamps otherwise), log levels from the config and -v/-q,
--version, --help and usage errors.

Waits are deadlines on something observable (a log line, the signal handlers being
installed, the process exit), never fixed sleeps.
"""

import os
import re
import signal
import subprocess
import time

import pytest

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "BUG at ")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"
STOP_SECONDS = 2.0


class Proc:
    """A mailferryd started by start(); stderr goes to a file (as under systemd)."""

    def __init__(self, popen, err_path):
        self.popen = popen
        self.err_path = err_path

    @property
    def pid(self):
        return self.popen.pid

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def lines(self):
        return self.stderr().splitlines()

    def wait_for(self, pattern, timeout=10.0, count=1):
        """The first `count` stderr lines matching pattern (regex), waiting for them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [ln for ln in self.lines() if re.search(pattern, ln)]
            if len(found) >= count:
                return found[:count]
            if self.popen.poll() is not None:
                found = [ln for ln in self.lines() if re.search(pattern, ln)]
                if len(found) >= count:
                    return found[:count]
                pytest.fail(f"mailferryd exited ({self.popen.returncode}) before logging "
                            f"{pattern!r}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} on stderr after {timeout} s:\n{self.stderr()}")
            time.sleep(0.01)

    def wait_ready(self, timeout=10.0):
        """Until SIGTERM, SIGINT and SIGHUP are caught (the loop's handlers are in place):
        works whatever the log level."""
        wanted = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1)) | \
                 (1 << (signal.SIGHUP - 1))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    caught = next(int(ln.split()[1], 16) for ln in f if ln.startswith("SigCgt:"))
            except (FileNotFoundError, ProcessLookupError, StopIteration):
                caught = 0
            if caught & wanted == wanted:
                return
            if self.popen.poll() is not None:
                pytest.fail(f"mailferryd exited ({self.popen.returncode}):\n{self.stderr()}")
            if time.monotonic() > deadline:
                pytest.fail(f"mailferryd did not install its signal handlers:\n{self.stderr()}")
            time.sleep(0.01)

    def signal_and_wait(self, sig, timeout=STOP_SECONDS):
        """Send sig; returns (exit status, seconds to exit). Fails after timeout."""
        t0 = time.monotonic()
        self.popen.send_signal(sig)
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mailferryd still runs {timeout} s after signal {sig!r}:\n"
                        f"{self.stderr()}")
        return rc, time.monotonic() - t0

    def assert_clean(self):
        text = self.stderr()
        for mark in SANITIZER_MARKS:
            assert mark not in text, text


@pytest.fixture
def start(mf_env):
    """start(*args, env=None) -> Proc: mailferryd in the background, stderr to a file;
    env: extra environment variables (or a callable given the stderr path, returning them).
    Every process left running is killed at the end."""
    procs = []

    def run(*args, env=None):
        n = len(procs)
        err_path = mf_env.home / f"daemon.{n}.err"
        out_path = mf_env.home / f"daemon.{n}.out"
        err_path.touch()
        extra = env(err_path) if callable(env) else (env or {})
        with open(out_path, "wb") as fo, open(err_path, "ab") as fe:
            popen = subprocess.Popen([str(mf_env.binary("mailferryd")), *map(str, args)],
                                     env=dict(mf_env.env, **extra), cwd=mf_env.home,
                                     stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
        proc = Proc(popen, err_path)
        proc.out_path = out_path
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait()


def journal_env(path):
    st = os.stat(path)
    return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


def broken_config(mf_env, accounts=None):
    """Write a config with an unknown key; returns (path, the expected error message)."""
    accounts = accounts or [mf_env.account()]
    accounts[0]["imap"]["colour"] = "blue"
    path = mf_env.write_config(accounts)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if "colour" in text)
    return path, f"{path}:{line}: accounts[test].imap.colour: unknown key"


# ----- start and stop ---------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_start_and_stop(mf_env, start, sig):
    path = mf_env.write_config()
    d = start()  # the default config path
    [line] = d.wait_for(r"event=start ")
    assert re.fullmatch(rf"{STAMP} info event=start version=\S+ config={re.escape(str(path))} "
                        r"accounts=1", line), line
    d.wait_ready()
    rc, seconds = d.signal_and_wait(sig)
    assert rc == 0, d.stderr()
    assert seconds < STOP_SECONDS
    name = "TERM" if sig == signal.SIGTERM else "INT"
    lines = d.lines()
    assert re.fullmatch(rf"{STAMP} info event=stop signal={name}", lines[-2]), lines
    assert re.fullmatch(rf"{STAMP} info event=exit", lines[-1]), lines
    assert d.out_path.read_text() == ""
    d.assert_clean()


def test_config_error_at_start(mf_env, start):
    path, message = broken_config(mf_env)
    d = start("-c", path)
    assert d.popen.wait(10) == 2
    assert d.stderr() == message + "\n"


def test_missing_config_at_start(mf_env):
    rc, out, err = mf_env.mailferryd()  # nothing at the default path
    assert (rc, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith(str(mf_env.config_path)) and "No such file" in line, line


# ----- SIGHUP -----------------------------------------------------------------------------

def test_reload_with_changed_config(mf_env, start):
    path = mf_env.write_config()
    d = start("-c", path)
    d.wait_for(r"event=start .*accounts=1$")
    mf_env.write_config([mf_env.account("one"), mf_env.account("two", user="bob")])
    d.popen.send_signal(signal.SIGHUP)
    [line] = d.wait_for(r"event=reload")
    assert re.fullmatch(rf"{STAMP} info event=reload result=ok accounts=2", line), line
    # And again: every SIGHUP re-reads the file.
    mf_env.write_config([mf_env.account("one")])
    d.popen.send_signal(signal.SIGHUP)
    d.wait_for(r"event=reload result=ok accounts=1$")
    rc, seconds = d.signal_and_wait(signal.SIGTERM)
    assert rc == 0 and seconds < STOP_SECONDS
    d.assert_clean()


def test_reload_with_broken_config_keeps_running(mf_env, start):
    path = mf_env.write_config()
    d = start("-c", path)
    d.wait_for(r"event=start ")
    _, message = broken_config(mf_env)
    d.popen.send_signal(signal.SIGHUP)
    [line] = d.wait_for(r"event=reload")
    assert re.fullmatch(rf"{STAMP} error event=reload result=failed .*: {re.escape(message)}",
                        line), line
    assert d.popen.poll() is None, "a broken config on reload stopped the daemon"
    # A config that became readable by others while holding a password fails too.
    mf_env.write_config(mode=0o644)
    d.popen.send_signal(signal.SIGHUP)
    [_, line] = d.wait_for(r"event=reload", count=2)
    assert line.endswith(f"{path}: holds a password but is readable by group or others; "
                         f"run: chmod 600 {path}"), line
    # Repaired, it loads again.
    mf_env.write_config()
    d.popen.send_signal(signal.SIGHUP)
    d.wait_for(r"event=reload result=ok accounts=1$")
    rc, seconds = d.signal_and_wait(signal.SIGTERM)
    assert rc == 0 and seconds < STOP_SECONDS
    d.assert_clean()


# ----- log format -------------------------------------------------------------------------

def test_journal_priority_prefixes(mf_env, start):
    """Under systemd ($JOURNAL_STREAM names stderr) lines carry <N> and no timestamp."""
    path = mf_env.write_config()
    d = start("-c", path, env=journal_env)
    [line] = d.wait_for(r"event=start ")
    assert re.fullmatch(rf"<6>event=start version=\S+ config={re.escape(str(path))} "
                        r"accounts=1", line), line
    broken_config(mf_env)
    d.popen.send_signal(signal.SIGHUP)
    [line] = d.wait_for(r"event=reload")
    assert line.startswith("<3>event=reload result=failed "), line
    rc, _ = d.signal_and_wait(signal.SIGTERM)
    assert rc == 0
    assert d.lines()[-2:] == ["<6>event=stop signal=TERM", "<6>event=exit"]


def test_journal_stream_of_another_file(mf_env, start):
    """$JOURNAL_STREAM inherited by a process whose stderr goes elsewhere: timestamps."""
    other = mf_env.home / "journal-elsewhere"
    other.touch()
    mf_env.write_config()
    d = start(env=journal_env(other))
    [line] = d.wait_for(r"event=start ")
    assert re.match(rf"{STAMP} info event=start ", line), line
    d.wait_ready()
    assert d.signal_and_wait(signal.SIGTERM)[0] == 0


# ----- log levels -------------------------------------------------------------------------

def run_quietly(mf_env, start, *args, general=None):
    """Start, wait until ready, stop; returns the stderr lines."""
    mf_env.write_config(general=general)
    d = start(*args)
    d.wait_ready()
    rc, _ = d.signal_and_wait(signal.SIGTERM)
    assert rc == 0, d.stderr()
    d.assert_clean()
    return d.lines()


@pytest.mark.parametrize("args", [("-q",), ("-qq",), ("--quiet",)])
def test_quiet_hides_info(mf_env, start, args):
    assert run_quietly(mf_env, start, *args) == []


def test_config_log_level(mf_env, start):
    assert run_quietly(mf_env, start, general={"log_level": "warn"}) == []


@pytest.mark.parametrize("args", [("-v",), ("--verbose",)])
def test_verbose_overrides_config_level(mf_env, start, args):
    lines = run_quietly(mf_env, start, *args, general={"log_level": "error"})
    assert any(" info event=start " in ln for ln in lines), lines


def test_quiet_overrides_config_level(mf_env, start):
    assert run_quietly(mf_env, start, "-q", general={"log_level": "trace"}) == []


def test_level_from_command_line_survives_reload(mf_env, start):
    """-q is the user's choice for this run: a reload does not undo it. SIGHUP is taken
    before SIGTERM (lower signals are delivered first), so the reload happens."""
    path = mf_env.write_config()
    d = start("-q", "-c", path)
    d.wait_ready()
    d.popen.send_signal(signal.SIGHUP)
    rc, _ = d.signal_and_wait(signal.SIGTERM)
    assert rc == 0
    assert d.lines() == []
    # Proof that such a reload does run: with a broken config it says so at error level.
    d = start("-q", "-c", path)
    d.wait_ready()
    broken_config(mf_env)
    d.popen.send_signal(signal.SIGHUP)
    d.wait_for(r"error event=reload result=failed ")
    assert d.signal_and_wait(signal.SIGTERM)[0] == 0


def test_reload_applies_config_level(mf_env, start):
    """Without -v/-q the config's log_level rules, also after a reload."""
    path = mf_env.write_config(general={"log_level": "info"})
    d = start("-c", path)
    d.wait_for(r"event=start ")
    mf_env.write_config(general={"log_level": "warn"})
    d.popen.send_signal(signal.SIGHUP)
    rc, _ = d.signal_and_wait(signal.SIGTERM)
    assert rc == 0
    assert [ln for ln in d.lines() if "event=stop" in ln or "event=exit" in ln] == []


def test_verbose_check_shows_debug_and_trace(mf_env):
    """-v and -vv for the modes that have something to say (--check here)."""
    mf_env.write_config()
    rc, _, err = mf_env.mailferryd("--check")
    assert rc == 0 and err == ""
    rc, _, err = mf_env.mailferryd("--check", "-v")
    assert rc == 0
    assert re.search(rf"^{STAMP} debug .*event=tls TLSv1\.[23] ", err, re.M), err
    assert " trace " not in err
    rc, _, err = mf_env.mailferryd("--check", "-vv")
    assert rc == 0
    assert re.search(rf"^{STAMP} trace account=test conn=\d+ C: A\d+ LIST ", err, re.M), err


# ----- the command line -------------------------------------------------------------------

def test_version(mf_env):
    rc, out, err = mf_env.mailferryd("--version")
    assert (rc, err) == (0, "")
    assert re.fullmatch(r"mailferryd \d+\.\d+\.\d+\S*\n", out), out


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(mf_env, flag):
    rc, out, err = mf_env.mailferryd(flag)
    assert (rc, err) == (0, "")
    assert out.startswith("usage: mailferryd ")
    for option in ("--config", "--once", "--check", "--allow-mass-delete", "--verbose",
                   "--quiet", "--version", "--help"):
        assert option in out


@pytest.mark.parametrize("args, message, usage", [
    (["--bogus"], "unrecognized option '--bogus'", True),
    (["-x"], "invalid option -- 'x'", True),
    (["-c"], "option requires an argument -- 'c'", True),
    (["stray"], "unexpected argument: stray", True),
    (["--once", "--check"], "--once and --check exclude each other", False),
], ids=["long", "short", "missing-arg", "stray", "two-modes"])
def test_usage_errors(mf_env, args, message, usage):
    """Exit 2, the problem on the first line of stderr (getopt's own messages name the
    program as it was invoked), then the usage where it helps; nothing is attempted."""
    mf_env.write_config()
    rc, out, err = mf_env.mailferryd(*args)
    assert (rc, out) == (2, "")
    first, *rest = err.splitlines()
    assert re.fullmatch(rf"(\S*/)?mailferryd: {re.escape(message)}", first), err
    if usage:
        assert rest[0].startswith("usage: mailferryd "), err
    else:
        assert rest == [], err


def test_ctl_help(mf_env):
    for flag in ("--help", "-h"):
        rc, out, err = mf_env.mailferryctl(flag)
        assert (rc, err) == (0, "")
        assert out.startswith("usage: mailferryctl ")
        for command in ("status", "sync", "pause", "resume", "reload", "log-level", "stop"):
            assert re.search(rf"^  (\S.*)?\b{command}\b", out, re.M), command


def test_ctl_version(mf_env):
    rc, out, err = mf_env.mailferryctl("--version")
    assert (rc, err) == (0, "")
    assert re.fullmatch(r"mailferryctl \d+\.\d+\.\d+\S*\n", out), out


@pytest.mark.parametrize("args", [["status"], ["sync", "test"], ["reload"], ["stop"],
                                  ["--json", "status"]])
def test_ctl_without_a_daemon(mf_env, args):
    mf_env.write_config()
    rc, out, err = mf_env.mailferryctl(*args)
    assert (rc, out) == (3, "")
    assert err.startswith("mailferryctl: mailferryd is not running (nothing answers at "), err
    assert str(mf_env.runtime_dir / "mailferry" / "ctl.sock") in err


def test_ctl_without_a_command(mf_env):
    rc, out, err = mf_env.mailferryctl()
    assert (rc, out) == (2, "")
    assert err.startswith("usage: mailferryctl "), err
