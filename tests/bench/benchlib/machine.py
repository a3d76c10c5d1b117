"""What the figures were taken on: CPU, cores, memory, disk, kernel, load."""

import os
import platform
import subprocess


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _disk(path):
    res = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", path],
                         capture_output=True, text=True)
    source, _, fstype = res.stdout.strip().partition(" ")
    desc = f"{fstype.strip() or '?'} on {source or '?'}"
    dev = os.path.basename(source)
    rota = f"/sys/block/{dev}/queue/rotational"
    if os.path.exists(rota):
        with open(rota) as f:
            desc += " (rotational)" if f.read().strip() == "1" else " (non-rotational)"
    return desc


def load():
    return os.getloadavg()


def describe(workdir):
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _mem_gb(),
        "disk": _disk(workdir),
        "kernel": platform.release(),
        "os": _os_release(),
    }


def _os_release():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def one_line(workdir, load_before):
    """The machine and its load, for a report's opening line."""
    m = describe(workdir)
    loaded = " (loaded: quote only figures from a quiet machine)" if load_before[0] > 0.5 else ""
    return (f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']:.0f} GB RAM, {m['disk']}, "
            f"Linux {m['kernel']} ({m['os']}); load average at the start "
            f"{' / '.join(f'{v:.2f}' for v in load_before)}{loaded}")
