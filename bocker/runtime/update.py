"""`bocker update`: new limits for a container, written into its cgroup
if it runs and into its record's Spec either way, so that a later start
or restart keeps them (the start path builds its cgroup from the Spec).

Limits (a Change): memory (bytes, 0 none), memory_swap (memory+swap
bytes, -1 unlimited), cpu_shares, cpus, pids_limit (-1/0 none),
cpuset_cpus ("0-2,4"), restart (a --restart policy).
"""
import os
import re

from bocker import events
from bocker.errors import BockerError, InvalidArgument, NoSuchContainer
from bocker.kernel import cgroups
from bocker.runtime import records

_CPUSET = re.compile(r"^[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?){0,63}$")
FIELDS = ("memory", "memory_swap", "cpu_shares", "cpus", "pids_limit", "cpuset_cpus", "restart")


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
    if change.get("restart") is not None:
        from bocker.runtime import restartpolicy

        restartpolicy.parse(change["restart"])


def update(paths, ref, change, driver=None):
    """Apply change (a dict of FIELDS) to the container ref names; returns
    its ID.  A running container's cgroup is written first: a limit the
    kernel refuses (memory below what it uses) changes nothing stored."""
    check(change)
    cid = records.resolve(paths, ref)
    with records.locked(paths, cid) as here:
        if not here:
            raise NoSuchContainer(ref)
        record = records.refresh(paths, records.read_stored(paths, cid))
        spec = record["Spec"]
        if change.get("restart") is not None and spec.get("remove") \
                and change["restart"] not in ("", "no"):
            raise InvalidArgument("Conflicting options: --restart and --rm")
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
    if change.get("cpuset_cpus"):
        cs = driver.controller_dir(cid, "cpuset")
        if not cs or not os.path.isdir(cs):
            raise BockerError("cannot change --cpuset-cpus of this running container: it "
                              "has no cpuset cgroup (nothing was changed)")
        cgroups.write_value(os.path.join(cs, "cpuset.cpus"), change["cpuset_cpus"])


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
    if change.get("cpuset_cpus"):
        path = os.path.join(d, "cpuset.cpus")
        if not os.path.exists(path):
            raise BockerError("the container's cgroup has no cpuset controller")
        cgroups.write_value(path, change["cpuset_cpus"])


def _int(path):
    try:
        with open(path, "rb") as f:
            text = f.read(64).strip()
        return int(text) if text.lstrip(b"-").isdigit() else None
    except FileNotFoundError:
        return None
