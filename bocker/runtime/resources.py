"""Docker's resource and device flags beyond -m/-c/--cpus: their parsers
(pure), their checks (before anything is made) and the host-side
resolution of device paths to major:minor (at start).

--memory-reservation, --memory-swappiness, --oom-kill-disable,
--oom-score-adj, --cpu-period, --cpu-quota, --cpuset-mems,
--cpu-rt-period/--cpu-rt-runtime, --blkio-weight, --blkio-weight-device,
--device-{read,write}-{bps,iops}, --kernel-memory, --cgroup-parent,
--cgroupns, --device
and --device-cgroup-rule.  The request stores them as given
(paths, not numbers: a device's numbers are the host's at each start).
"""
import os
import re
import stat

from bocker.errors import InvalidArgument

MAX_INT64 = (1 << 63) - 1
MIN_CPU_PERIOD, MAX_CPU_PERIOD = 1000, 1000000   # the kernel's cfs_period_us range
MIN_CPU_QUOTA = 1000                              # Docker's floor (1 ms)
MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT = 10, 1000     # Docker's (v1 blkio.weight)
MAX_ENTRIES = 64                                  # per list flag: plenty for real hosts
THROTTLES = ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops")
# v1 blkio.throttle.* file and v2 io.max key of each throttle flag
V1_THROTTLE = {"device_read_bps": "blkio.throttle.read_bps_device",
               "device_write_bps": "blkio.throttle.write_bps_device",
               "device_read_iops": "blkio.throttle.read_iops_device",
               "device_write_iops": "blkio.throttle.write_iops_device"}
V2_THROTTLE = {"device_read_bps": "rbps", "device_write_bps": "wbps",
               "device_read_iops": "riops", "device_write_iops": "wiops"}
_CPUSET = re.compile(r"[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?){0,63}\Z")
_RULE = re.compile(r"([abc]) (\*|[0-9]{1,7}):(\*|[0-9]{1,7}) ([rwm]{1,3})\Z")
_PERMS = re.compile(r"[rwm]{1,3}\Z")


def flag(field):
    """The Docker flag of a request field: 'cpu_period' -> '--cpu-period'."""
    return "--" + field.replace("_", "-")


def parse_rate(item, field, size):
    """'PATH:RATE' of a --device-*-bps (size: RATE may be 1mb) or -iops
    flag -> (path, int); the path must be absolute."""
    from bocker import units

    path, sep, rate = str(item).rpartition(":")
    if not sep or not path.startswith("/"):
        raise InvalidArgument(f"invalid {flag(field)} '{item}': use /DEVICE:RATE")
    try:
        value = units.parse_size(rate, "b") if size else int(rate) if rate.isascii() \
            and rate.isdigit() else None
    except InvalidArgument:
        value = None
    if value is None or not 0 < value <= MAX_INT64:
        raise InvalidArgument(f"invalid {flag(field)} '{item}': the rate must be a positive "
                              f"{'size' if size else 'number'}")
    return path, value


def parse_weight_device(item):
    """'PATH:WEIGHT' of --blkio-weight-device -> (path, weight 10..1000)."""
    path, sep, weight = str(item).rpartition(":")
    if not sep or not path.startswith("/") or not (weight.isascii() and weight.isdigit()) \
            or not MIN_BLKIO_WEIGHT <= int(weight) <= MAX_BLKIO_WEIGHT:
        raise InvalidArgument(f"invalid --blkio-weight-device '{item}': use /DEVICE:WEIGHT "
                              f"with WEIGHT {MIN_BLKIO_WEIGHT} to {MAX_BLKIO_WEIGHT}")
    return path, int(weight)


def parse_device(item):
    """--device HOST[:CONTAINER[:PERMS]] -> (host, container, perms);
    container defaults to host, perms to rwm (Docker's)."""
    parts = str(item).split(":")
    if len(parts) == 2 and _PERMS.match(parts[1]):  # HOST:PERMS, as Docker accepts
        parts = [parts[0], parts[0], parts[1]]
    if not 1 <= len(parts) <= 3:
        raise InvalidArgument(f"invalid --device '{item}': use HOST[:CONTAINER[:PERMS]]")
    host = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 else "rwm"
    if not host.startswith("/") or not target.startswith("/"):
        raise InvalidArgument(f"invalid --device '{item}': paths must be absolute")
    if not _PERMS.match(perms) or len(set(perms)) != len(perms):
        raise InvalidArgument(f"invalid --device '{item}': PERMS is a mix of r, w and m")
    target = os.path.normpath(target)
    if target.startswith("//"):
        target = "/" + target.lstrip("/")
    if not target.startswith("/dev/") or target.startswith("/dev/pts/") or "/../" in target:
        raise InvalidArgument(f"invalid --device '{item}': the container path must be "
                              f"below /dev (not /dev/pts)")
    return host, target, perms


def parse_rule(rule):
    """--device-cgroup-rule 'TYPE MAJOR:MINOR PERMS' (c 7:* rwm) -> the
    same text, checked (the devices cgroup takes it as it is)."""
    text = " ".join(str(rule).split())
    if not _RULE.match(text):
        raise InvalidArgument(f"invalid --device-cgroup-rule '{rule}': use "
                              f"'a|b|c MAJOR|*:MINOR|* [r][w][m]'")
    return text


def check(req):
    """Refuse a resource or device field of req that cannot run (one line)."""
    def int_in(field, low, high):
        value = getattr(req, field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not low <= value <= high):
            raise InvalidArgument(f"invalid {flag(field)} {value!r}: {low} to {high}")

    int_in("memory_reservation", 0, MAX_INT64)
    int_in("kernel_memory", 0, MAX_INT64)
    int_in("memory_swappiness", -1, 100)
    int_in("oom_score_adj", -1000, 1000)
    int_in("cpu_period", MIN_CPU_PERIOD, MAX_CPU_PERIOD)
    int_in("cpu_quota", -1, MAX_INT64)
    int_in("cpu_rt_period", MIN_CPU_PERIOD, MAX_CPU_PERIOD)
    int_in("cpu_rt_runtime", 0, MAX_INT64)
    if req.blkio_weight not in (None, 0):
        int_in("blkio_weight", MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT)
    if req.cpu_quota not in (None, -1, 0) and req.cpu_quota < MIN_CPU_QUOTA:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if req.cpus is not None and (req.cpu_period or req.cpu_quota):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be "
                              "set" if req.cpu_period else "Conflicting options: Nano CPUs "
                              "and CPU Quota cannot both be set")
    if req.memory and req.memory_reservation and req.memory_reservation > req.memory:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")
    if req.cpu_rt_runtime and req.cpu_rt_period and req.cpu_rt_runtime > req.cpu_rt_period:
        raise InvalidArgument("--cpu-rt-runtime cannot be higher than --cpu-rt-period")
    if req.cpuset_mems is not None and not _CPUSET.match(req.cpuset_mems):
        raise InvalidArgument(f"invalid --cpuset-mems '{req.cpuset_mems[:40]}'")
    for field in ("blkio_weight_device", "devices", "device_cgroup_rules") + THROTTLES:
        if len(getattr(req, field)) > MAX_ENTRIES:
            raise InvalidArgument(f"too many {flag(field)}: at most {MAX_ENTRIES}")
    for item in req.blkio_weight_device:
        parse_weight_device(item)
    for field in THROTTLES:
        for item in getattr(req, field):
            parse_rate(item, field, field.endswith("bps"))
    for item in req.devices:
        parse_device(item)
    for rule in req.device_cgroup_rules:
        parse_rule(rule)
    if req.cgroup_parent is not None:
        from bocker.kernel import cgroups

        try:
            cgroups.check_parent(req.cgroup_parent)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
    if req.cgroupns not in (None, "private", "host"):
        raise InvalidArgument(f"invalid --cgroupns '{req.cgroupns}': host or private")


def device_numbers(path, block=True, what="device"):
    """(kind 'b'|'c', major, minor) of a host device node; a path that is
    not one (or, with block, not a block device) is a one-line refusal."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidArgument(f"{what} {path}: {e.strerror}") from None
    if stat.S_ISBLK(st.st_mode):
        return "b", os.major(st.st_rdev), os.minor(st.st_rdev)
    if stat.S_ISCHR(st.st_mode) and not block:
        return "c", os.major(st.st_rdev), os.minor(st.st_rdev)
    raise InvalidArgument(f"{what} {path}: not a {'block ' if block else ''}device")


def blkio(req):
    """The request's block I/O limits with host numbers: (weight_device
    [(maj, min, weight)], {throttle field: [(maj, min, rate)]}); only what
    was asked for (both empty: nothing is stat'ed)."""
    weights = []
    for item in req.blkio_weight_device:
        path, weight = parse_weight_device(item)
        _, major, minor = device_numbers(path, what="--blkio-weight-device")
        weights.append((major, minor, weight))
    throttles = {}
    for field in THROTTLES:
        for item in getattr(req, field):
            path, rate = parse_rate(item, field, field.endswith("bps"))
            _, major, minor = device_numbers(path, what=flag(field))
            throttles.setdefault(field, []).append((major, minor, rate))
    return weights, throttles


class Device:
    """One --device resolved on the host: its node's kind and numbers, the
    container path, the devices-cgroup perms."""

    __slots__ = ("host", "target", "perms", "kind", "major", "minor")

    def __init__(self, host, target, perms, kind, major, minor):
        self.host, self.target, self.perms = host, target, perms
        self.kind, self.major, self.minor = kind, major, minor

    def rule(self):
        """Its devices-cgroup allow rule ('c 7:3 rw')."""
        return f"{self.kind} {self.major}:{self.minor} {self.perms}"


def devices(req):
    """The request's --device list resolved on the host (a path that is
    not a device node is a one-line refusal)."""
    out = []
    for item in req.devices:
        host, target, perms = parse_device(item)
        kind, major, minor = device_numbers(host, block=False, what="--device")
        out.append(Device(host, target, perms, kind, major, minor))
    return out


def limits(req, version):
    """cgroups.Limits' extra fields of req (host numbers resolved) for a
    driver of cgroup version (1 or 2).  --kernel-memory is Docker's
    deprecated no-op: only the CLI's warning."""
    weights, throttles = blkio(req)
    rules = None
    if not req.privileged and (req.devices or req.device_cgroup_rules or can_mknod(req)):
        own = [parse_rule(r) for r in req.device_cgroup_rules]
        # v1: a devices group (Docker's defaults, then these); v2: --device's
        # node is made, its perms unenforced (bocker loads no BPF program)
        rules = own + [d.rule() for d in devices(req)] if version == 1 else own or None
    return dict(memory_reservation=req.memory_reservation, swappiness=req.memory_swappiness,
                oom_kill_disable=req.oom_kill_disable, cpu_period=req.cpu_period,
                cpu_quota=req.cpu_quota, cpuset_mems=req.cpuset_mems,
                cpu_rt_period=req.cpu_rt_period, cpu_rt_runtime=req.cpu_rt_runtime,
                blkio_weight=req.blkio_weight or None, weight_device=weights or None,
                throttles=throttles or None, device_rules=rules)


def can_mknod(req):
    """True if --cap-add gives the container CAP_MKNOD (not --privileged):
    its /dev (not nodev) would then open any node it makes, so on v1 it
    gets a devices group that allows only Docker's defaults."""
    if not req.cap_add or req.privileged:
        return False
    from bocker.confine import capabilities

    return "MKNOD" in capabilities.effective(req.cap_add, req.cap_drop)


def set_oom_score_adj(pid, value):
    """--oom-score-adj for the container's init (before it execs: what it
    runs inherits it) or an exec'd process."""
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(value))
    except PermissionError:
        from bocker.errors import RunRefused

        raise RunRefused(f"--oom-score-adj {value}: lowering a score needs CAP_SYS_RESOURCE, "
                         f"which bocker does not have here") from None


class own_oom_score_adj:
    """Context: our own oom_score_adj set to value (a process we clone
    meanwhile, an exec'd one, is born with it), restored on exit."""

    def __init__(self, value):
        self.value = value

    def __enter__(self):
        with open("/proc/self/oom_score_adj") as f:
            self.saved = f.read(16).strip()
        set_oom_score_adj("self", self.value)
        return self

    def __exit__(self, *exc):
        set_oom_score_adj("self", self.saved)


def host_config(req):
    """Docker's HostConfig keys of req's resource and device flags (a
    stored value that no longer parses is shown as given)."""
    def rows(items, parse, key):
        out = []
        for item in items:
            try:
                path, value = parse(item)
            except InvalidArgument:
                out.append({"Raw": item})
                continue
            out.append({"Path": path, key: value})
        return out

    def devs():
        out = []
        for item in req.devices:
            try:
                host, target, perms = parse_device(item)
            except InvalidArgument:
                out.append({"Raw": item})
                continue
            out.append({"PathOnHost": host, "PathInContainer": target,
                        "CgroupPermissions": perms})
        return out

    throttle = {f: rows(getattr(req, f), lambda i, f=f: parse_rate(i, f, f.endswith("bps")),
                        "Rate") for f in THROTTLES}
    return {
        "MemoryReservation": req.memory_reservation or 0,
        "MemorySwappiness": req.memory_swappiness, "OomKillDisable": bool(req.oom_kill_disable),
        "OomScoreAdj": req.oom_score_adj or 0, "CpuPeriod": req.cpu_period or 0,
        "CpuQuota": req.cpu_quota or 0, "CpusetMems": req.cpuset_mems or "",
        "CpuRealtimePeriod": req.cpu_rt_period or 0,
        "CpuRealtimeRuntime": req.cpu_rt_runtime or 0, "BlkioWeight": req.blkio_weight or 0,
        "BlkioWeightDevice": rows(req.blkio_weight_device, parse_weight_device, "Weight"),
        "BlkioDeviceReadBps": throttle["device_read_bps"],
        "BlkioDeviceWriteBps": throttle["device_write_bps"],
        "BlkioDeviceReadIOps": throttle["device_read_iops"],
        "BlkioDeviceWriteIOps": throttle["device_write_iops"],
        "KernelMemory": req.kernel_memory or 0, "CgroupnsMode": req.cgroupns or "private",
        "CgroupParent": req.cgroup_parent or "",
        "Devices": devs(), "DeviceCgroupRules": list(req.device_cgroup_rules) or None,
    }
