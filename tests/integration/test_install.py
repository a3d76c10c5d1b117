"""Installation: `cmake --install` into a temporary DESTDIR puts every file where it belongs
(binaries, the systemd user unit, the example config, the man pages); the unit passes
`systemd-analyze verify` against the installed binaries, in both system and user mode; the
man pages render with `man -l` without a warning and match the programs (every option of
--help, every command, every config key is documented)."""

import os
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MF_BUILD_DIR", REPO / "build"))
PAGES = {"man1/mailferryd.1": "MAILFERRYD", "man1/mailferryctl.1": "MAILFERRYCTL",
         "man5/mailferry.conf.5": "MAILFERRY.CONF"}


def cache_value(name):
    text = (BUILD / "CMakeCache.txt").read_text()
    m = re.search(rf"^{re.escape(name)}:\w+=(.*)$", text, re.M)
    assert m, f"{name} not in the CMake cache"
    return m.group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(DESTDIR, prefix) after cmake --install."""
    dest = tmp_path_factory.mktemp("destdir")
    res = subprocess.run(["cmake", "--install", str(BUILD)], env=dict(os.environ, DESTDIR=str(dest)),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return dest, cache_value("CMAKE_INSTALL_PREFIX")


def plain(text):
    """man's output without overstrike bold and underline."""
    return re.sub(r".\x08", "", text)


def under(dest, path):
    return dest / str(path).lstrip("/")


def test_every_file_lands_in_place(installed):
    dest, prefix = installed
    root = under(dest, prefix)
    for name in ("mailferryd", "mailferryctl"):
        binary = root / "bin" / name
        assert binary.is_file() and os.access(binary, os.X_OK), binary
    unit = under(dest, cache_value("MF_SYSTEMD_USER_UNIT_DIR")) / "mailferry.service"
    assert unit.is_file()
    # where the user manager looks for units under this prefix
    assert unit.parent == root / "lib" / "systemd" / "user"
    for page in PAGES:
        assert (root / "share" / "man" / page).is_file(), page
    example = root / "share" / "doc" / "mailferry" / "mailferry.conf"
    assert example.read_text() == (REPO / "config" / "mailferry.conf").read_text()
    installed_files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert len(installed_files) == 8, installed_files  # the above plus README.md


def test_the_unit(installed):
    dest, prefix = installed
    unit = (under(dest, cache_value("MF_SYSTEMD_USER_UNIT_DIR")) / "mailferry.service").read_text()
    keys = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
    assert keys["Type"] == "notify"
    assert keys["ExecStart"] == f"{prefix}/bin/mailferryd"
    assert keys["ExecReload"] == f"{prefix}/bin/mailferryctl reload"
    assert keys["Restart"] == "on-failure"
    assert keys["WatchdogSec"] == "60s"
    assert keys["NoNewPrivileges"] == "yes"
    assert keys["WantedBy"] == "default.target"


def test_systemd_analyze_verify(installed, tmp_path):
    """The installed unit against the installed binaries and man pages: the DESTDIR tree is
    mounted over the prefix in a private mount namespace, so ExecStart's path is real."""
    dest, prefix = installed
    unit = pathlib.Path(cache_value("MF_SYSTEMD_USER_UNIT_DIR")) / "mailferry.service"
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    script = (f'mount --bind "{under(dest, prefix)}" "{prefix}" || exit 99\n'
              f'systemd-analyze verify "{unit}" 2>&1; echo "system rc=$?"\n'
              f'systemd-analyze --user verify "{unit}" 2>&1; echo "user rc=$?"\n')
    res = subprocess.run(["unshare", "--mount", "sh", "-c", script],
                         env=dict(os.environ, MANPATH=f"{prefix}/share/man",
                                  XDG_RUNTIME_DIR=str(runtime)),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout == "system rc=0\nuser rc=0\n", res.stdout + res.stderr


@pytest.mark.parametrize("page", sorted(PAGES))
def test_man_page_renders_without_warnings(installed, page):
    dest, prefix = installed
    path = under(dest, prefix) / "share" / "man" / page
    res = subprocess.run(["man", "--warnings", "-l", str(path)],
                         env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"),
                         capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stderr) == (0, ""), res.stderr
    text = plain(res.stdout)
    assert text.startswith(f"{PAGES[page]}(")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), section
    assert max(len(line) for line in text.splitlines()) <= 80
    groff = subprocess.run(["groff", "-man", "-ww", "-z", str(path)], capture_output=True,
                           text=True, timeout=60)
    assert (groff.returncode, groff.stderr) == (0, "")


def rendered(page):
    res = subprocess.run(["man", "-l", str(REPO / "docs" / page)],
                         env=dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8"),
                         capture_output=True, text=True, timeout=60, check=True)
    return plain(res.stdout)


def help_text(binary):
    res = subprocess.run([str(BUILD / binary), "--help"], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0
    return res.stdout


def test_man_pages_match_the_programs():
    daemon_page = rendered("mailferryd.1")
    for option in re.findall(r"(--[a-z-]+|-[a-z]\b)", help_text("daemon/mailferryd")):
        assert option in daemon_page, option
    ctl_help = help_text("ctl/mailferryctl")
    ctl_page = rendered("mailferryctl.1")
    commands = re.findall(r"^  ([a-z][a-z-]+)", ctl_help, re.M)
    commands += re.findall(r"\| ([a-z][a-z-]+)", ctl_help)
    assert {"status", "sync", "pause", "resume", "reload", "log-level", "stop"} <= set(commands)
    for command in commands:
        assert re.search(rf"^ {{7}}{command}\b", ctl_page, re.M), command
    for option in re.findall(r"(--[a-z-]+|-[a-z]\b)", ctl_help):
        assert option in ctl_page, option
    # every key of the annotated example config is documented
    conf_page = rendered("mailferry.conf.5")
    example = (REPO / "config" / "mailferry.conf").read_text()
    keys = set(re.findall(r"^\s*#?\s*([a-z_]+)\s*[=:]", example, re.M))
    assert {"new_mail_command", "post_sync_command", "hook_timeout"} <= keys
    for key in keys:
        assert re.search(rf"\b{key}\b", conf_page), key
    for var in ("MAILFERRY_ACCOUNT", "MAILFERRY_EVENT", "MAILFERRY_NEW", "MAILFERRY_FOLDERS"):
        assert var in conf_page and var in example and var in daemon_page
