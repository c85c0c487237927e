"""A process's identity in /proc: its state letter and its start time
(field 22 of /proc/PID/stat, clock ticks after boot), which tells a PID
from a recycled one.  One reader for container records (runtime/records.py),
the network pool's lease owners (net/ipam.py) and bocker-oci's state."""


def stat(pid):
    """(state letter, start time) of pid, or None if no such process runs
    (or pid is no PID)."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # the command name (in parentheses) may hold spaces and ')'
            fields = f.read(4096).rsplit(b")", 1)[1].split()
        return fields[0].decode(), int(fields[19])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def start_time(pid):
    """pid's start time, or None if it is gone."""
    st = stat(pid)
    return st[1] if st else None


def alive(pid, start):
    """True if pid is the process that started at start and has not
    exited (a zombie waiting for its reaper has)."""
    st = stat(pid)
    return bool(st) and st[0] not in ("Z", "X") and st[1] == start
