"""`bocker update`: new limits for a container, written into its cgroup
if it runs and into its record's Spec either way, so that a later start
or restart keeps them (the start path builds its cgroup from the Spec).

Limits (a Change): memory (bytes, 0 none), memory_swap (memory+swap
bytes, -1 unlimited), cpu_shares, cpus, pids_limit (-1/0 none),
cpuset_cpus ("0-2,4"), restart (a --restart policy), memory_reservation
(bytes, 0 none), cpu_period/cpu_quota (us; a quota of -1 none),
cpuset_mems ("0-1"), blkio_weight (10-1000).
"""
import os
import re

from bocker import events
from bocker.errors import BockerError, InvalidArgument
from bocker.kernel import cgroups
from bocker.runtime import records

_CPUSET = re.compile(r"^[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?){0,63}$")
FIELDS = ("memory", "memory_swap", "cpu_shares", "cpus", "pids_limit", "cpuset_cpus", "restart",
          # Docker's further flags (runtime/resources.py's checks)
          "memory_reservation", "cpu_period", "cpu_quota", "cpuset_mems", "blkio_weight")


def check(change):
    """Refuse a change that cannot be written (before anything is)."""
    for key in change:
        if key not in FIELDS:
            raise InvalidArgument(f"update: unknown limit {key}")
    if not change:
        raise InvalidArgument("you must provide one or more flags when using this command")
    mem, swap = change.get("memory"), change.get("memory_swap")
    if swap is not None and swap != -1 and mem and swap < mem:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if change.get("cpu_shares") is not None and not 0 <= change["cpu_shares"] <= 262144:
        raise InvalidArgument(f"invalid --cpu-shares {change['cpu_shares']}")
    if change.get("pids_limit") is not None and change["pids_limit"] < -1:
        raise InvalidArgument(f"invalid --pids-limit {change['pids_limit']}")
    cs = change.get("cpuset_cpus")
    if cs is not None and cs != "" and not _CPUSET.match(cs):
        raise InvalidArgument(f"invalid --cpuset-cpus '{cs[:40]}'")
    _check_resources(change)
    if change.get("restart") is not None:
        from bocker.runtime import restartpolicy

        restartpolicy.parse(change["restart"])


def _check_resources(change):
    """Docker's further flags, checked as run checks them."""
    keys = ("memory_reservation", "cpu_period", "cpu_quota", "cpuset_mems", "blkio_weight")
    if not any(k in change for k in keys):
        return
    from bocker.runtime import resources, spec

    req = spec.RunRequest("busybox", **{k: change[k] for k in keys if k in change})
    resources.check(req)
    if change.get("cpus") and ("cpu_period" in change or "cpu_quota" in change):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot "
                              "both be set")


def _conflicts(change, spec):
    """A change that the stored limits contradict (as run refuses them)."""
    if change.get("cpu_period") or change.get("cpu_quota") not in (None, -1, 0):
        if change.get("cpus", spec.get("cpus")):
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota "
                                  "cannot both be set")
    memory = change.get("memory", spec.get("memory") or 0)
    reservation = change.get("memory_reservation", spec.get("memory_reservation") or 0)
    if memory and reservation and reservation > memory:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")


def update(paths, ref, change, driver=None):
    """Apply change (a dict of FIELDS) to the container ref names; returns
    its ID.  A running container's cgroup is written first: a limit the
    kernel refuses (memory below what it uses) changes nothing stored."""
    check(change)
    with records.locked_current(paths, ref) as (cid, record):
        spec = record["Spec"]
        if change.get("restart") is not None and spec.get("remove") \
                and change["restart"] not in ("", "no"):
            raise InvalidArgument("Conflicting options: --restart and --rm")
        _conflicts(change, spec)
        if record["State"].get("Running"):
            write(driver or cgroups.driver(), cid, change, spec)
        for key, value in change.items():
            spec[key] = value
        records.save(paths, record)
    events.container(paths, record, "update")
    return cid


def write(driver, cid, change, spec):
    """Write change into the container's cgroup (v1 or v2)."""
    try:
        if driver.version == 1:
            _write_v1(driver, cid, change, spec)
        else:
            _write_v2(driver.controller_dir(cid, "memory"), change, spec)
    except OSError as e:
        raise BockerError(f"Cannot update container {cid}: {e.strerror or e}") from None


def _write_v1(driver, cid, change, spec):
    mem = driver.controller_dir(cid, "memory")
    if mem and ("memory" in change or "memory_swap" in change):
        memory = change.get("memory", spec.get("memory") or 0)
        swap = change.get("memory_swap", spec.get("memory_swap"))
        limit = memory if memory else -1
        # bocker's rule (as at start): no swap unless --memory-swap says
        total = -1 if swap == -1 or not memory and swap is None else (swap or memory)
        memsw = os.path.join(mem, "memory.memsw.limit_in_bytes")
        has_sw = os.path.exists(memsw)
        # memory <= memsw at every step: raise memsw first when growing
        current = _int(os.path.join(mem, "memory.limit_in_bytes"))
        grow = limit == -1 or (current is not None and limit > current)
        if has_sw and grow:
            cgroups.write_value(memsw, total)
        cgroups.write_value(os.path.join(mem, "memory.limit_in_bytes"), limit)
        if has_sw and not grow:
            cgroups.write_value(memsw, total)
    cpu = driver.controller_dir(cid, "cpu")
    if cpu and change.get("cpu_shares"):
        cgroups.write_value(os.path.join(cpu, "cpu.shares"), change["cpu_shares"])
    if cpu and "cpus" in change:
        quota = int(change["cpus"] * cgroups.CFS_PERIOD_US) if change["cpus"] else -1
        cgroups.write_value(os.path.join(cpu, "cpu.cfs_period_us"), cgroups.CFS_PERIOD_US)
        cgroups.write_value(os.path.join(cpu, "cpu.cfs_quota_us"), quota)
    pids = driver.controller_dir(cid, "pids")
    if pids and "pids_limit" in change:
        value = change["pids_limit"]
        cgroups.write_value(os.path.join(pids, "pids.max"), value if value > 0 else "max")
    for key in ("cpuset_cpus", "cpuset_mems"):
        if change.get(key):
            cs = driver.controller_dir(cid, "cpuset")
            if not cs or not os.path.isdir(cs):
                raise BockerError(f"cannot change --{key.replace('_', '-')} of this running "
                                  f"container: it has no cpuset cgroup (nothing was changed)")
            cgroups.write_value(os.path.join(cs, key.replace("_", ".")), change[key])
    if mem and change.get("memory_reservation") is not None:
        cgroups.write_value(os.path.join(mem, "memory.soft_limit_in_bytes"),
                            change["memory_reservation"] or -1)
    if cpu and ("cpu_period" in change or "cpu_quota" in change):
        period = change.get("cpu_period", spec.get("cpu_period")) or cgroups.CFS_PERIOD_US
        quota = change.get("cpu_quota", spec.get("cpu_quota"))
        cgroups.write_value(os.path.join(cpu, "cpu.cfs_period_us"), period)
        cgroups.write_value(os.path.join(cpu, "cpu.cfs_quota_us"),
                            quota if quota and quota > 0 else -1)
    if change.get("blkio_weight"):
        from bocker.kernel import cgroupextra

        limits = cgroups.Limits(blkio_weight=change["blkio_weight"])
        cgroupextra.write_v1(driver, cid, limits)


def _write_v2(d, change, spec):
    if "memory" in change or "memory_swap" in change:
        memory = change.get("memory", spec.get("memory") or 0)
        swap = change.get("memory_swap", spec.get("memory_swap"))
        cgroups.write_value(os.path.join(d, "memory.max"), memory or "max")
        swap_file = os.path.join(d, "memory.swap.max")
        if os.path.exists(swap_file):
            if swap == -1 or (not memory and swap is None):
                cgroups.write_value(swap_file, "max")
            else:
                cgroups.write_value(swap_file, max((swap or memory) - memory, 0))
    if change.get("cpu_shares"):
        cgroups.write_value(os.path.join(d, "cpu.weight"),
                            cgroups.shares_to_weight(change["cpu_shares"]))
    if "cpus" in change:
        quota = int(change["cpus"] * cgroups.CFS_PERIOD_US) if change["cpus"] else "max"
        cgroups.write_value(os.path.join(d, "cpu.max"), f"{quota} {cgroups.CFS_PERIOD_US}")
    if "pids_limit" in change:
        value = change["pids_limit"]
        cgroups.write_value(os.path.join(d, "pids.max"), value if value > 0 else "max")
    for key in ("cpuset_cpus", "cpuset_mems"):
        if change.get(key):
            path = os.path.join(d, key.replace("_", "."))
            if not os.path.exists(path):
                raise BockerError("the container's cgroup has no cpuset controller")
            cgroups.write_value(path, change[key])
    if change.get("memory_reservation") is not None:
        cgroups.write_value(os.path.join(d, "memory.low"), change["memory_reservation"])
    if "cpu_period" in change or "cpu_quota" in change:
        period = change.get("cpu_period", spec.get("cpu_period")) or cgroups.CFS_PERIOD_US
        quota = change.get("cpu_quota", spec.get("cpu_quota"))
        cgroups.write_value(os.path.join(d, "cpu.max"),
                            f"{quota if quota and quota > 0 else 'max'} {period}")
    if change.get("blkio_weight"):
        from bocker.kernel import cgroupextra

        cgroupextra.write_v2(d, cgroups.Limits(blkio_weight=change["blkio_weight"]))


def _int(path):
    try:
        with open(path, "rb") as f:
            text = f.read(64).strip()
        return int(text) if text.lstrip(b"-").isdigit() else None
    except FileNotFoundError:
        return None
