"""Running one tool once: wall time (monotonic clock), user and system CPU time and peak
RSS (/usr/bin/time -v), exit status, output; and the IMAP commands the server saw."""

import collections
import dataclasses
import os
import subprocess
import time

TIME = "/usr/bin/time"
METRIC = "bench_cmd"

# Dovecot's stats: one counter per user and IMAP command (commands after login; the
# pre-login CAPABILITY/LOGIN/AUTHENTICATE are handled by imap-login and not counted).
DOVECOT_METRIC = f"""
metric {METRIC} {{
  filter = event=imap_command_finished
  group_by = user cmd_name
}}
"""


@dataclasses.dataclass
class Sample:
    rc: int
    wall: float
    user: float
    sys: float
    rss_kb: int
    output: str
    commands: dict = dataclasses.field(default_factory=dict)


def run_timed(cmd, log_path, env=None):
    stats = log_path + ".time"
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        res = subprocess.run([TIME, "-v", "-o", stats, "--", *cmd], stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        wall = time.monotonic() - t0
    fields = {}
    with open(stats) as f:
        for line in f:
            key, sep, value = line.strip().rpartition(": ")
            if sep:
                fields[key] = value
    os.unlink(stats)
    with open(log_path, errors="replace") as f:
        output = f.read()
    return Sample(rc=res.returncode, wall=wall,
                  user=float(fields.get("User time (seconds)", "nan")),
                  sys=float(fields.get("System time (seconds)", "nan")),
                  rss_kb=int(fields.get("Maximum resident set size (kbytes)", "0")),
                  output=output)


def command_counts(srv, user):
    """{IMAP command: count} that `user` has sent since the server started."""
    out = srv.doveadm("stats", "dump", check=False).stdout
    prefix = f"{METRIC}_{user}_"
    counts = collections.Counter()
    for line in out.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 3 and cols[0].startswith(prefix) and cols[1] == "duration":
            counts[cols[0][len(prefix):].replace("_", " ")] = int(cols[2])
    return counts


def command_delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
