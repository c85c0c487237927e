"""What the figures were measured on: machine facts and tool versions."""
import os
import platform
import shutil
import socket
import subprocess
import time


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _first_line(argv):
    """First non-empty output line of a command, or None if it is absent."""
    if not shutil.which(argv[0]) and not os.path.exists(argv[0]):
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (out.stdout + out.stderr).splitlines():
        if line.strip():
            return line.strip()
    return None


def cgroup_mode():
    """'unified' (cgroup2 only), 'hybrid' (v1 + cgroup2 at unified/) or 'legacy'."""
    mounts = {}
    for line in (_read("/proc/self/mounts") or "").splitlines():
        fields = line.split()
        if len(fields) >= 3:
            mounts[fields[1]] = fields[2]
    if mounts.get("/sys/fs/cgroup") == "cgroup2":
        return "unified"
    if mounts.get("/sys/fs/cgroup/unified") == "cgroup2":
        return "hybrid"
    return "legacy"


def cpu_model():
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def os_release():
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return None


def mem_total_mib():
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def machine():
    """Facts about this machine that move start latency."""
    return {
        "hostname": socket.gethostname(),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_total_mib": mem_total_mib(),
        "kernel": platform.release(),
        "os": os_release(),
        "cgroup_mode": cgroup_mode(),
        "clocksource": _read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "virtualization": _first_line(["systemd-detect-virt"]),
        "loadavg_at_start": _read("/proc/loadavg"),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def git_describe(repo_root):
    try:
        out = subprocess.run(["git", "-C", repo_root, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def versions(repo_root, bocker_python, p8952=None):
    """Versions of everything measured."""
    try:
        import bocker
        bocker_version = bocker.__version__
    except ImportError:
        bocker_version = None
    out = {
        "bocker": bocker_version,
        "bocker_git": git_describe(repo_root),
        "python_bench": platform.python_version(),
        "python_bocker": _first_line([bocker_python, "--version"]) if bocker_python else None,
        "crun": _first_line(["crun", "--version"]),
        "runc": _first_line(["runc", "--version"]),
        "bwrap": _first_line(["bwrap", "--version"]),
        "unshare": _first_line(["unshare", "--version"]),
        "cc": _first_line(["cc", "--version"]),
    }
    if p8952:
        out["p8952"] = _first_line(["sha256sum", p8952])
    return out
