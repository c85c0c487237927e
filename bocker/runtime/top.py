"""`bocker top CONTAINER [ps options]`: the container's processes, read
on the host side from its cgroup's cgroup.procs and /proc, shown as ps
shows them (Docker runs the host's ps; bocker reads /proc itself).

The processes are the container's, so hostile: every read is bounded,
a process gone meanwhile is skipped, and what a process names itself
(comm, cmdline) is shown with its control characters escaped.

ps options understood: -ef (Docker's default: UID PID PPID C STIME TTY
TIME CMD), -e, -f, aux, and -o/-eo with the fields in FIELDS; others are
refused (one line naming them).
"""
import os
import pwd
import time

from bocker.errors import InvalidArgument

MAX_PROCS = 1 << 16        # a fork bomb's group is shown cut, not read forever
MAX_CMDLINE = 4096
PROCS_READ = 1 << 20

# -o field -> its header, as procps prints it
FIELDS = {"uid": "UID", "user": "USER", "pid": "PID", "ppid": "PPID", "c": "C",
          "stime": "STIME", "start": "START", "tty": "TTY", "time": "TIME", "cmd": "CMD",
          "args": "COMMAND", "command": "COMMAND", "comm": "COMMAND", "etime": "ELAPSED",
          "stat": "STAT", "rss": "RSS", "vsz": "VSZ", "pcpu": "%CPU", "%cpu": "%CPU",
          "pmem": "%MEM", "%mem": "%MEM", "nlwp": "NLWP", "pgid": "PGID"}
DEFAULT = ["uid", "pid", "ppid", "c", "stime", "tty", "time", "cmd"]          # -ef
BSD_AUX = ["user", "pid", "pcpu", "pmem", "vsz", "rss", "tty", "stat", "start", "time",
           "command"]
SHORT = ["pid", "tty", "time", "cmd"]                                        # -e


def parse_ps_args(args):
    """The fields to show for top's ps options (a list of FIELDS keys)."""
    args = list(args)
    if not args:
        return list(DEFAULT)
    if args in (["aux"], ["-aux"], ["axu"], ["au"], ["ux"]):
        return list(BSD_AUX)
    fields, full = [], False
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and "o" in a[1:]:
            flags, _, rest = a[1:].partition("o")
            _check_flags(flags, a)
            spec = rest or (args[i + 1] if i + 1 < len(args) else "")
            if not rest:
                i += 1
            if not spec:
                raise InvalidArgument(f"top: {a} needs a list of fields")
            fields += _fields(spec)
        elif a.startswith("-") and len(a) > 1:
            _check_flags(a[1:], a)
            full = full or "f" in a
        else:
            raise InvalidArgument(f"top: ps option '{a[:40]}' is not supported "
                                  "(use -ef, -e, -f, aux, or -o FIELD,...)")
        i += 1
    return fields or (list(DEFAULT) if full else list(SHORT))


def _check_flags(flags, arg):
    # every process is shown whatever the selection: -e, -A, -a, -x are the same here
    bad = set(flags) - set("eAafxlwH")
    if bad:
        raise InvalidArgument(f"top: ps option '{arg[:40]}' is not supported")


def _fields(spec):
    out = []
    for f in spec.replace(" ", ",").split(","):
        name = f.split("=", 1)[0].strip().lower()
        if not name:
            continue
        if name not in FIELDS:
            raise InvalidArgument(f"top: unknown ps field '{name[:40]}' (known: "
                                  f"{', '.join(sorted(FIELDS))})")
        out.append(name)
    return out


def container_pids(driver, cid):
    """Host PIDs in the container's cgroup, in order (bounded)."""
    d = None
    for controller in ("pids", "memory", "cpu", "freezer"):
        d = driver.controller_dir(cid, controller)
        if d:
            break
    if d is None:
        return []
    try:
        with open(os.path.join(d, "cgroup.procs"), "rb") as f:
            data = f.read(PROCS_READ)
    except FileNotFoundError:
        return []
    pids = []
    for tok in data.split()[:MAX_PROCS]:
        if tok.isdigit():
            pids.append(int(tok))
    return sorted(set(pids))


def read_proc(pid, proc="/proc"):
    """What ps shows of one process, or None if it is gone."""
    base = f"{proc}/{pid}"
    try:
        stat = _read(f"{base}/stat", 4096)
        status = _read(f"{base}/status", 16384)
        cmdline = _read(f"{base}/cmdline", MAX_CMDLINE)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return parse_proc(pid, stat, status, cmdline)


def parse_proc(pid, stat, status, cmdline):
    """parse of /proc/<pid>/{stat,status,cmdline} bytes (None if malformed)."""
    head, sep, tail = stat.rpartition(b")")
    if not sep or b"(" not in head:
        return None
    comm = head.split(b"(", 1)[1]
    rest = tail.split()
    if len(rest) < 22:
        return None
    try:
        nums = [int(x) for x in rest[1:22]]
    except ValueError:
        return None
    uid = 0
    threads = 1
    for line in status.split(b"\n"):
        if line.startswith(b"Uid:"):
            parts = line.split()
            if len(parts) > 2 and parts[2].isdigit():
                uid = int(parts[2])  # effective, as ps's UID
        elif line.startswith(b"Threads:"):
            parts = line.split()
            if len(parts) > 1 and parts[1].isdigit():
                threads = int(parts[1])
    args = [a for a in cmdline.split(b"\0")]
    while args and args[-1] == b"":
        args.pop()
    return {"pid": pid, "comm": printable(comm), "state": printable(rest[0][:1]),
            "ppid": nums[0], "pgid": nums[1], "tty_nr": nums[3], "utime": nums[10],
            "stime": nums[11], "starttime": nums[18], "vsize": nums[19], "rss_pages": nums[20],
            "uid": uid, "threads": threads,
            "args": printable(b" ".join(args)) if args else ""}


def printable(raw):
    """bytes from a process as text on one line: control characters and
    undecodable bytes escaped."""
    text = raw.decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Clock:
    """What turning ticks into times needs: the host's boot time, clock
    ticks per second, page size, total memory, and now."""

    def __init__(self, proc="/proc"):
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.now = time.time()
        self.boot = 0.0
        self.mem_total = 0
        try:
            for line in _read(f"{proc}/stat", 1 << 16).split(b"\n"):
                if line.startswith(b"btime "):
                    self.boot = float(line.split()[1])
            for line in _read(f"{proc}/meminfo", 1 << 16).split(b"\n"):
                if line.startswith(b"MemTotal:"):
                    self.mem_total = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass


def row(p, fields, clock, users=None):
    """One process's values for fields (strings)."""
    started = clock.boot + p["starttime"] / clock.ticks
    elapsed = max(clock.now - started, 0.001)
    cpu_secs = (p["utime"] + p["stime"]) / clock.ticks
    rss = p["rss_pages"] * clock.page

    def value(f):
        if f == "uid":
            return str(p["uid"])
        if f == "user":
            return user_name(p["uid"], users)
        if f in ("pid", "ppid", "pgid"):
            return str(p[f])
        if f == "c":
            return str(min(int(cpu_secs * 100 / elapsed), 99))
        if f in ("pcpu", "%cpu"):
            return f"{cpu_secs * 100 / elapsed:.1f}"
        if f in ("pmem", "%mem"):
            return f"{100 * rss / clock.mem_total:.1f}" if clock.mem_total else "0.0"
        if f in ("stime", "start"):
            return start_time(started, clock.now)
        if f == "tty":
            return tty_name(p["tty_nr"])
        if f == "time":
            return cpu_time(int(cpu_secs))
        if f == "etime":
            return elapsed_time(int(elapsed))
        if f == "stat":
            return p["state"]
        if f == "rss":
            return str(rss // 1024)
        if f == "vsz":
            return str(p["vsize"] // 1024)
        if f == "nlwp":
            return str(p["threads"])
        if f == "comm":
            return p["comm"]
        return p["args"] or f"[{p['comm']}]"  # cmd, args, command
    return [value(f) for f in fields]


def user_name(uid, cache=None):
    """The host's name for uid, else the number (as ps)."""
    cache = {} if cache is None else cache
    if uid not in cache:
        try:
            cache[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            cache[uid] = str(uid)
    return cache[uid]


def tty_name(tty_nr):
    """ps's TTY: '?' without one, pts/N, ttyN."""
    if not tty_nr:
        return "?"
    major, minor = (tty_nr >> 8) & 0xfff, (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)
    if 136 <= major <= 143:
        return f"pts/{minor + (major - 136) * 256}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return "?"


def cpu_time(secs):
    """ps's TIME: [DD-]HH:MM:SS."""
    days, secs = divmod(secs, 86400)
    text = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    return f"{days}-{text}" if days else text


def elapsed_time(secs):
    """ps's ELAPSED: [[DD-]HH:]MM:SS."""
    days, secs = divmod(secs, 86400)
    hours, mins, s = secs // 3600, secs // 60 % 60, secs % 60
    if days:
        return f"{days}-{hours:02d}:{mins:02d}:{s:02d}"
    if hours:
        return f"{hours:02d}:{mins:02d}:{s:02d}"
    return f"{mins:02d}:{s:02d}"


def start_time(started, now):
    """ps's STIME: HH:MM today, 'Mon DD' this year, else the year."""
    t, n = time.localtime(started), time.localtime(now)
    if now - started < 86400 and t.tm_yday == n.tm_yday:
        return time.strftime("%H:%M", t)
    if t.tm_year == n.tm_year:
        return time.strftime("%b%d", t)
    return str(t.tm_year)


def top(paths, ref, ps_args=()):
    """(headers, rows) of the running container's processes."""
    from bocker.kernel import cgroups
    from bocker.runtime import signals

    fields = parse_ps_args(ps_args)
    record = signals.running(paths, ref)
    clock = Clock()
    users = {}
    rows = []
    for pid in container_pids(cgroups.driver(), record["Id"]):
        p = read_proc(pid)
        if p is not None:
            rows.append(row(p, fields, clock, users))
    return [FIELDS[f] for f in fields], rows


def _read(path, limit):
    with open(path, "rb") as f:
        return f.read(limit)
