"""Tests wait for what the user would see (a file, a flag on the server, a log line) with
a deadline, never for a fixed time."""

import time

import pytest


def wait_for(what, check, timeout=30.0, step=0.02):
    """check() until it returns something true, which is returned; fails the test after
    timeout seconds, naming what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
