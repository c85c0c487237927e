"""`bocker stats`: a container's resource use read from its cgroup
(cgroup v1, v2 or hybrid, through kernel/cgroups.py's driver) and its
host-side veth counters, shaped as Docker's stats table.

A Sample is one reading; Docker's CPU % needs two (the container's CPU
time over the host's, times the CPUs): row() takes the previous one.
Every read is of a kernel file, bounded; a group gone meanwhile (the
container ended) reads as zeros.
"""
import os
import time

READ_LIMIT = 1 << 16


class Sample:
    """One reading of one container's counters."""

    __slots__ = ("cpu_ns", "system_ns", "online_cpus", "mem_usage", "mem_limit", "net_rx",
                 "net_tx", "blk_read", "blk_write", "pids", "when")

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name, 0))


def sample(record, driver=None, proc="/proc", sys_net="/sys/class/net"):
    """A Sample of the container of record (zeros for one not running)."""
    from bocker.kernel import cgroups

    driver = driver or cgroups.driver()
    s = Sample(when=time.monotonic(), system_ns=system_cpu_ns(proc), online_cpus=os.cpu_count())
    st = record["State"]
    if not st.get("Running"):
        return s
    cid = record["Id"]
    if driver.version == 1:
        _v1(s, driver, cid)
    else:
        _v2(s, driver.controller_dir(cid, "memory"))
    if not s.mem_limit or s.mem_limit >= 1 << 62:  # unlimited: the host's memory
        s.mem_limit = host_memory(proc)
    if (record.get("NetworkSettings") or {}).get("HostVeth"):
        from bocker.net.ipam import veth_name

        # the name from the ID, not from the record's text: it becomes a path
        host = veth_name(cid)
        # the host side's received bytes are what the container sent
        s.net_rx = _int_file(f"{sys_net}/{host}/statistics/tx_bytes")
        s.net_tx = _int_file(f"{sys_net}/{host}/statistics/rx_bytes")
    return s


def _v1(s, driver, cid):
    acct = driver.controller_dir(cid, "cpuacct")
    if acct:
        s.cpu_ns = _int_file(os.path.join(acct, "cpuacct.usage"))
    mem = driver.controller_dir(cid, "memory")
    if mem:
        usage = _int_file(os.path.join(mem, "memory.usage_in_bytes"))
        stat = flat_keyed(_read(os.path.join(mem, "memory.stat")))
        # Docker's (v1): usage less the page cache it could drop
        s.mem_usage = max(usage - stat.get("total_inactive_file", 0), 0)
        s.mem_limit = _int_file(os.path.join(mem, "memory.limit_in_bytes"))
    pids = driver.controller_dir(cid, "pids")
    if pids:
        s.pids = _int_file(os.path.join(pids, "pids.current"))
    blk = driver.controller_dir(cid, "blkio")
    if blk:
        s.blk_read, s.blk_write = blkio_v1(
            _read(os.path.join(blk, "blkio.throttle.io_service_bytes_recursive")))


def _v2(s, d):
    cpu = flat_keyed(_read(os.path.join(d, "cpu.stat")))
    s.cpu_ns = cpu.get("usage_usec", 0) * 1000
    usage = _int_file(os.path.join(d, "memory.current"))
    stat = flat_keyed(_read(os.path.join(d, "memory.stat")))
    s.mem_usage = max(usage - stat.get("inactive_file", 0), 0)
    s.mem_limit = _int_file(os.path.join(d, "memory.max"))  # "max": 0, the host's below
    s.pids = _int_file(os.path.join(d, "pids.current"))
    s.blk_read, s.blk_write = io_stat_v2(_read(os.path.join(d, "io.stat")))


def flat_keyed(text):
    """{key: int} of a cgroup flat-keyed file ('key value' lines)."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        v = v.strip()
        if v.isdigit():
            out[k] = int(v)
    return out


def blkio_v1(text):
    """(read bytes, write bytes) summed over devices of v1's
    blkio.throttle.io_service_bytes_recursive ('8:0 Read 4096' lines)."""
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            if parts[1] == "Read":
                read += int(parts[2])
            elif parts[1] == "Write":
                write += int(parts[2])
    return read, write


def io_stat_v2(text):
    """(read bytes, write bytes) summed over devices of v2's io.stat
    ('8:0 rbytes=4096 wbytes=0 rios=1 ...' lines)."""
    read = write = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            k, _, v = field.partition("=")
            if v.isdigit():
                if k == "rbytes":
                    read += int(v)
                elif k == "wbytes":
                    write += int(v)
    return read, write


def system_cpu_ns(proc="/proc"):
    """The host's CPU time since boot in ns (/proc/stat's cpu line), as
    Docker's SystemUsage."""
    for line in _read(f"{proc}/stat").splitlines():
        if line.startswith("cpu "):
            ticks = sum(int(x) for x in line.split()[1:8] if x.isdigit())
            return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def host_memory(proc="/proc"):
    """MemTotal in bytes."""
    for line in _read(f"{proc}/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) > 1 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return 0


def cpu_percent(prev, now):
    """Docker's CPU %: the container's share of the host's CPU time
    between two samples, times the CPUs."""
    cpu = now.cpu_ns - prev.cpu_ns
    system = now.system_ns - prev.system_ns
    if cpu <= 0 or system <= 0:
        return 0.0
    return cpu / system * (now.online_cpus or 1) * 100.0


def row(record, prev, now, no_trunc=False):
    """Docker's stats fields for one container (as its --format names them)."""
    cid = record["Id"]
    running = record["State"].get("Running")
    mem_pct = 100.0 * now.mem_usage / now.mem_limit if now.mem_limit and running else 0.0
    return {
        "Container": cid if no_trunc else cid[:15], "ID": cid if no_trunc else cid[:15],
        "Name": record["Name"],
        "CPUPerc": f"{cpu_percent(prev, now) if running else 0.0:.2f}%",
        "MemUsage": f"{binary_size(now.mem_usage)} / {binary_size(now.mem_limit if running else 0)}",
        "MemPerc": f"{mem_pct:.2f}%",
        "NetIO": f"{decimal_size(now.net_rx)} / {decimal_size(now.net_tx)}",
        "BlockIO": f"{decimal_size(now.blk_read)} / {decimal_size(now.blk_write)}",
        "PIDs": str(now.pids),
    }


HEADERS = [("Container", "CONTAINER ID"), ("Name", "NAME"), ("CPUPerc", "CPU %"),
           ("MemUsage", "MEM USAGE / LIMIT"), ("MemPerc", "MEM %"), ("NetIO", "NET I/O"),
           ("BlockIO", "BLOCK I/O"), ("PIDs", "PIDS")]


def binary_size(n):
    """go-units' BytesSize: 1.961MiB, 7.675GiB, 0B."""
    return _size(n, 1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"), 4)


def decimal_size(n):
    """go-units' HumanSizeWithPrecision(n, 3): 648B, 1.05kB, 12.3MB."""
    return _size(n, 1000.0, ("B", "kB", "MB", "GB", "TB", "PB"), 3)


def _size(n, base, units, precision):
    n = float(n)
    i = 0
    while n >= base and i < len(units) - 1:
        n /= base
        i += 1
    return f"{n:.{precision}g}{units[i]}"


def _int_file(path):
    text = _read(path).strip()
    return int(text) if text.isdigit() else 0


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read(READ_LIMIT).decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return ""
