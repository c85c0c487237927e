"""OCI linux.resources -> cgroup file writes, for v1 and v2.

Pure: plan() checks every value's type and range and returns the writes
(which controller, which file, what value) plus a warning for each field
it does not apply; bocker/oci/cgroup.py resolves controllers to
directories and writes.  Which version a controller is on comes from the
caller (a hybrid host may have hugetlb on v2 and the rest on v1).
"""
import re
from typing import NamedTuple

from bocker.errors import InvalidArgument
from bocker.kernel.cgroups import shares_to_weight

PREFIX = "linux.resources"
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
UINT32_MAX = (1 << 32) - 1

# What runc allows in every container whatever the config says (learned
# from its specconv.AllowedDevices): mknod of anything, and the devices
# every container has (null random full tty zero urandom, pts, ptmx, tun).
DEFAULT_DEVICE_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
    "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
)

# unified keys never written: moving processes or killing them is not a
# resource setting (and a hostile config could move host processes in).
UNIFIED_REFUSED = frozenset({"cgroup.procs", "cgroup.threads", "cgroup.kill"})

_CPU_LIST = re.compile(r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$")
_PAGE_SIZE = re.compile(r"^[1-9][0-9]{0,9}[KMG]B$")
_IFNAME = re.compile(r"^[^\s/:\x00]{1,15}$")


class Write(NamedTuple):
    """One cgroup file write.  file: a name, or a tuple of alternatives
    (the first that exists is written).  optional: a missing file is
    skipped silently.  retry: an EINVAL is retried once after the other
    writes (limits whose order depends on the old values: memory vs
    memory+swap, CFS and RT period vs quota)."""

    field: str
    controller: str
    file: object
    value: str
    optional: bool = False
    retry: bool = False


class Plan:
    """What plan() returns: writes in order, warnings (strings)."""

    def __init__(self):
        self.writes, self.warnings = [], []

    def add(self, field, controller, file, value, **kw):
        self.writes.append(Write(field, controller, file, str(value), **kw))

    def warn(self, field, why):
        self.warnings.append(f"{field} not applied: {why}")


def _bad(field, why):
    return InvalidArgument(f"{field}: {why}")


def integer(field, value, lo=None, hi=None):
    """value as an int in [lo, hi] (JSON booleans are not integers)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(field, "must be an integer")
    if lo is not None and value < lo:
        raise _bad(field, f"must be at least {lo}" if hi is None else f"must be between {lo} and {hi}")
    if hi is not None and value > hi:
        raise _bad(field, f"must be at most {hi}" if lo is None else f"must be between {lo} and {hi}")
    return value


def boolean(field, value):
    """value, checked to be a JSON boolean."""
    if not isinstance(value, bool):
        raise _bad(field, "must be a boolean")
    return value


def string(field, value, pattern=None, what=None):
    """value as a str without NUL, matching pattern if given."""
    if not isinstance(value, str):
        raise _bad(field, "must be a string")
    if "\0" in value or len(value) > 4096:
        raise _bad(field, "must be a string of at most 4096 characters without NUL")
    if pattern is not None and not pattern.match(value):
        raise _bad(field, f"must be {what}")
    return value


def obj(field, value):
    """value, checked to be a JSON object."""
    if not isinstance(value, dict):
        raise _bad(field, "must be an object")
    return value


def array(field, value, limit=4096):
    """value, checked to be a JSON array of at most limit entries."""
    if not isinstance(value, list):
        raise _bad(field, "must be an array")
    if len(value) > limit:
        raise _bad(field, f"must have at most {limit} entries")
    return value


def _warn_rest(plan, field, section, known):
    for key in section:
        if key not in known:
            plan.warn(f"{field}.{key}", "unknown field")


def plan(resources, versions, create=True):
    """Check linux.resources and return its Plan for this host.

    versions: {controller: 1 or 2} of the controllers the group has;
    create: the first application (devices are then always set up, as
    runc does: deny all but its defaults and the config's rules)."""
    p = Plan()
    if resources is None:
        resources = {}
    obj(PREFIX, resources)
    sections = {"memory": _memory, "cpu": _cpu, "pids": _pids, "hugepageLimits": _hugepages,
                "blockIO": _blockio, "network": _network, "unified": _unified}
    for key, value in resources.items():
        if key in sections:
            sections[key](p, f"{PREFIX}.{key}", value, versions)
        elif key != "devices":
            p.warn(f"{PREFIX}.{key}", "not supported by bocker-oci")
    if "devices" in resources or create:
        _devices(p, f"{PREFIX}.devices", resources.get("devices"), versions, "devices" in resources)
    return p


def _controller(p, field, versions, name):
    """The version of controller name, or None after a warning."""
    v = versions.get(name)
    if v is None:
        p.warn(field, f"this host has no {name} cgroup controller")
    return v


def _memory(p, field, mem, versions):
    obj(field, mem)
    known = {"limit", "reservation", "swap", "swappiness", "disableOOMKiller",
             "kernel", "kernelTCP"}
    get = lambda k, lo=-1: (integer(f"{field}.{k}", mem[k], lo, INT64_MAX)  # noqa: E731
                            if mem.get(k) is not None else None)
    limit, reservation, swap = get("limit"), get("reservation"), get("swap")
    swappiness = mem.get("swappiness")
    if swappiness is not None:
        integer(f"{field}.swappiness", swappiness, 0, 100)
    oom = mem.get("disableOOMKiller")
    if oom is not None:
        boolean(f"{field}.disableOOMKiller", oom)
    for k in ("kernel", "kernelTCP"):
        if k in mem:
            p.warn(f"{field}.{k}", "kernel memory limits are deprecated")
    _warn_rest(p, field, mem, known)
    if swap and limit and limit > 0 and 0 < swap < limit:
        raise _bad(f"{field}.swap", "must be at least memory.limit (it limits memory+swap)")
    v = _controller(p, field, versions, "memory")
    if v is None:
        return
    if v == 1:
        if limit:
            p.add(f"{field}.limit", "memory", "memory.limit_in_bytes", limit, retry=True)
        if swap:
            p.add(f"{field}.swap", "memory", "memory.memsw.limit_in_bytes", swap, retry=True)
        if reservation:
            p.add(f"{field}.reservation", "memory", "memory.soft_limit_in_bytes", reservation)
        if swappiness is not None:
            p.add(f"{field}.swappiness", "memory", "memory.swappiness", swappiness)
        if oom:
            p.add(f"{field}.disableOOMKiller", "memory", "memory.oom_control", 1)
        return
    _max = lambda n: "max" if n == -1 else n  # noqa: E731
    if limit:
        p.add(f"{field}.limit", "memory", "memory.max", _max(limit))
    if swap:
        p.add(f"{field}.swap", "memory", "memory.swap.max", _v2_swap(f"{field}.swap", swap, limit))
    if reservation:
        p.add(f"{field}.reservation", "memory", "memory.low", _max(reservation))
    if swappiness is not None:
        p.warn(f"{field}.swappiness", "cgroup v2 has no per-group swappiness")
    if oom:
        p.warn(f"{field}.disableOOMKiller", "cgroup v2 cannot disable the OOM killer")


def v2_swap(swap, limit):
    """OCI's memory+swap limit as v2 memory.swap.max (swap alone)."""
    return _v2_swap(f"{PREFIX}.memory.swap", swap, limit)


def _v2_swap(field, swap, limit):
    if swap == -1:
        return "max"
    if not limit:
        raise _bad(field, "cannot be set without memory.limit on cgroup v2")
    if limit == -1:
        return swap  # memory unlimited: all of memory+swap may be swap
    if swap < limit:
        raise _bad(field, "must be at least memory.limit (it limits memory+swap)")
    return swap - limit


def _cpu(p, field, cpu, versions):
    obj(field, cpu)
    known = {"shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod",
             "cpus", "mems", "idle"}
    get = lambda k, lo, hi: (integer(f"{field}.{k}", cpu[k], lo, hi)  # noqa: E731
                             if cpu.get(k) is not None else None)
    shares, quota, period = get("shares", 0, UINT64_MAX), get("quota", -1, INT64_MAX), get("period", 0, UINT64_MAX)
    burst = get("burst", 0, UINT64_MAX)
    rt_runtime, rt_period = get("realtimeRuntime", -1, INT64_MAX), get("realtimePeriod", 0, UINT64_MAX)
    idle = get("idle", 0, 1)
    sets = {}
    for k in ("cpus", "mems"):
        if cpu.get(k) is not None:
            s = string(f"{field}.{k}", cpu[k]).replace(" ", "")
            if s and not _CPU_LIST.match(s):
                raise _bad(f"{field}.{k}", 'must be a list like "0-3,7"')
            if s:
                sets[k] = s
    _warn_rest(p, field, cpu, known)
    if shares or quota or period or burst is not None or rt_runtime or rt_period or idle is not None:
        v = _controller(p, field, versions, "cpu")
        if v == 1:
            if shares:
                p.add(f"{field}.shares", "cpu", "cpu.shares", shares)
            if period:
                p.add(f"{field}.period", "cpu", "cpu.cfs_period_us", period, retry=True)
            if quota:
                p.add(f"{field}.quota", "cpu", "cpu.cfs_quota_us", quota, retry=True)
            if burst is not None:
                p.add(f"{field}.burst", "cpu", "cpu.cfs_burst_us", burst)
            if rt_period:
                p.add(f"{field}.realtimePeriod", "cpu", "cpu.rt_period_us", rt_period, retry=True)
            if rt_runtime:
                p.add(f"{field}.realtimeRuntime", "cpu", "cpu.rt_runtime_us", rt_runtime, retry=True)
        elif v == 2:
            if shares:
                p.add(f"{field}.shares", "cpu", "cpu.weight", shares_to_weight(shares))
            if quota or period:
                p.add(f"{field}.quota", "cpu", "cpu.max", cpu_max(quota, period))
            if burst is not None:
                p.add(f"{field}.burst", "cpu", "cpu.max.burst", burst)
            for k, n in (("realtimeRuntime", rt_runtime), ("realtimePeriod", rt_period)):
                if n:
                    p.warn(f"{field}.{k}", "cgroup v2 has no realtime group scheduling")
        if v and idle is not None:
            p.add(f"{field}.idle", "cpu", "cpu.idle", idle)
    if sets and _controller(p, f"{field}.cpus" if "cpus" in sets else f"{field}.mems",
                            versions, "cpuset"):
        for k, s in sets.items():
            p.add(f"{field}.{k}", "cpuset", f"cpuset.{k}", s)


def cpu_max(quota, period):
    """v2 cpu.max from OCI quota (-1 or 0: no limit) and period (0: keep)."""
    q = "max" if not quota or quota < 0 else str(quota)
    return f"{q} {period}" if period else q


def _pids(p, field, pids, versions):
    obj(field, pids)
    _warn_rest(p, field, pids, {"limit"})
    if pids.get("limit") is None:
        return
    limit = integer(f"{field}.limit", pids["limit"], -1, INT64_MAX)
    if _controller(p, field, versions, "pids"):
        p.add(f"{field}.limit", "pids", "pids.max", limit if limit > 0 else "max")


def _hugepages(p, field, limits, versions):
    array(field, limits, 64)
    for i, entry in enumerate(limits):
        f = f"{field}[{i}]"
        obj(f, entry)
        size = string(f"{f}.pageSize", entry.get("pageSize"), _PAGE_SIZE, 'a size like "2MB"')
        limit = integer(f"{f}.limit", entry.get("limit"), 0, UINT64_MAX)
        _warn_rest(p, f, entry, {"pageSize", "limit"})
        v = _controller(p, f, versions, "hugetlb")
        if v == 1:
            p.add(f, "hugetlb", f"hugetlb.{size}.limit_in_bytes", limit)
            p.add(f, "hugetlb", f"hugetlb.{size}.rsvd.limit_in_bytes", limit, optional=True)
        elif v == 2:
            p.add(f, "hugetlb", f"hugetlb.{size}.max", limit)
            p.add(f, "hugetlb", f"hugetlb.{size}.rsvd.max", limit, optional=True)


_THROTTLES = {"throttleReadBpsDevice": ("blkio.throttle.read_bps_device", "rbps"),
              "throttleWriteBpsDevice": ("blkio.throttle.write_bps_device", "wbps"),
              "throttleReadIOPSDevice": ("blkio.throttle.read_iops_device", "riops"),
              "throttleWriteIOPSDevice": ("blkio.throttle.write_iops_device", "wiops")}


def _blockio(p, field, bio, versions):
    obj(field, bio)
    _warn_rest(p, field, bio, {"weight", *_THROTTLES})
    weight = bio.get("weight")
    if weight is not None:
        integer(f"{field}.weight", weight, 10, 1000)
    throttles = []
    for key, (v1file, v2key) in _THROTTLES.items():
        if bio.get(key) is None:
            continue
        for i, entry in enumerate(array(f"{field}.{key}", bio[key], 256)):
            f = f"{field}.{key}[{i}]"
            obj(f, entry)
            major = integer(f"{f}.major", entry.get("major"), 0, UINT32_MAX)
            minor = integer(f"{f}.minor", entry.get("minor"), 0, UINT32_MAX)
            rate = integer(f"{f}.rate", entry.get("rate"), 0, UINT64_MAX)
            throttles.append((f, v1file, v2key, major, minor, rate))
    if weight is None and not throttles:
        return
    v = _controller(p, field, versions, "blkio" if versions.get("blkio") == 1 else "io")
    if v == 1:
        if weight is not None:
            p.add(f"{field}.weight", "blkio", ("blkio.weight", "blkio.bfq.weight"), weight)
        for f, v1file, _, major, minor, rate in throttles:
            p.add(f, "blkio", v1file, f"{major}:{minor} {rate}")
    elif v == 2:
        if weight is not None:
            p.add(f"{field}.weight", "io", ("io.weight", "io.bfq.weight"), weight)
        for f, _, v2key, major, minor, rate in throttles:
            p.add(f, "io", "io.max", f"{major}:{minor} {v2key}={rate or 'max'}")


def device_rule(field, rule):
    """One OCI device rule as (allow, "type major:minor access")."""
    obj(field, rule)
    allow = boolean(f"{field}.allow", rule.get("allow"))
    kind = rule.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise _bad(f"{field}.type", 'must be "a", "b" or "c"')
    nums = []
    for k in ("major", "minor"):
        n = rule.get(k)
        nums.append("*" if n is None or n == -1 else str(integer(f"{field}.{k}", n, -1, UINT32_MAX)))
    access = rule.get("access") or "rwm"
    string(f"{field}.access", access)
    if not set(access) <= set("rwm") or len(access) > 3:
        raise _bad(f"{field}.access", 'must be made of "r", "w" and "m"')
    if kind == "a":
        return allow, "a"
    return allow, f"{kind} {nums[0]}:{nums[1]} {access}"


def _devices(p, field, rules, versions, given):
    parsed = [device_rule(f"{field}[{i}]", r)
              for i, r in enumerate(array(field, rules if rules is not None else []))]
    v = versions.get("devices")
    if v == 1:
        # Deny everything, then the config's rules in order, then runc's
        # defaults: a config that denies all still has /dev/null.
        p.add(field, "devices", "devices.deny", "a")
        for allow, rule in parsed:
            p.add(field, "devices", "devices.allow" if allow else "devices.deny", rule)
        for rule in DEFAULT_DEVICE_RULES:
            p.add(field, "devices", "devices.allow", rule)
    elif given and parsed:
        if v == 2:
            p.warnings.append(f"{field} not applied: cgroup v2 device control needs eBPF")
        else:
            p.warn(field, "this host has no devices cgroup controller")


def _network(p, field, net, versions):
    obj(field, net)
    _warn_rest(p, field, net, {"classID", "priorities"})
    if net.get("classID") is not None:
        classid = integer(f"{field}.classID", net["classID"], 0, UINT32_MAX)
        if versions.get("net_cls") == 1:
            p.add(f"{field}.classID", "net_cls", "net_cls.classid", classid)
        else:
            p.warn(f"{field}.classID", "this host has no cgroup v1 net_cls controller")
    prios = []
    for i, entry in enumerate(array(f"{field}.priorities", net.get("priorities") or [], 256)):
        f = f"{field}.priorities[{i}]"
        obj(f, entry)
        name = string(f"{f}.name", entry.get("name"), _IFNAME, "an interface name")
        prios.append((name, integer(f"{f}.priority", entry.get("priority"), 0, UINT32_MAX)))
    if prios and versions.get("net_prio") != 1:
        p.warn(f"{field}.priorities", "this host has no cgroup v1 net_prio controller")
    elif prios:
        for name, prio in prios:
            p.add(f"{field}.priorities", "net_prio", "net_prio.ifpriomap", f"{name} {prio}")


def _unified(p, field, unified, versions):
    obj(field, unified)
    if len(unified) > 256:
        raise _bad(field, "must have at most 256 entries")
    checked = []
    for key, value in unified.items():
        f = f"{field}.{key}"
        if (not key or "/" in key or "\0" in key or key in (".", "..") or len(key) > 255
                or key in UNIFIED_REFUSED):
            raise _bad(f, "must name a cgroup interface file")
        checked.append((f, key, string(f, value)))
    if not checked:
        return
    if versions.get("unified") != 2:
        p.warn(field, "this host's containers use cgroup v1")
        return
    for f, key, value in checked:
        p.add(f, "unified", key, value)
