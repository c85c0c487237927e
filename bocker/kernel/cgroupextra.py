"""Docker's further cgroup limits (cgroups.Limits' extra fields) written
into a container's group: v1's per-controller files, v2's unified ones.

Loaded only by a container that asks for one of them.  A limit this host
cannot enforce is a one-line OSError(EOPNOTSUPP) refusal (raised before
the child runs: create() removes the group), or, where Docker only warns
and discards it, a one-line warning on stderr.
"""
import errno
import os
import sys

from bocker.kernel import cgroups

# Docker's default devices-cgroup rules (moby's DefaultSpec devices): mknod
# of any node, and the nodes of bocker's own /dev (null, zero, full,
# random, urandom, tty, ptmx, pts)
DEFAULT_DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
                        "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm")


def refuse(flag, why):
    """The one-line refusal of a flag this host's cgroups cannot enforce."""
    return OSError(errno.EOPNOTSUPP, f"{flag}: {why}")


def warn(text):
    """Docker's 'WARNING: ...' for a flag it discards (one line, stderr)."""
    sys.stderr.write(f"bocker: warning: {text}\n")


def _write_present(path, value, flag, why):
    if not os.path.exists(path):
        raise refuse(flag, why)
    cgroups.write_value(path, value)


def write_v1(driver, name, limits):
    """The extra limits into the group's v1 hierarchies (memory, cpu,
    blkio, devices; cpuset's are cgroups.V1Driver._make_cpuset's)."""
    mem = driver.controller_dir(name, "memory")
    if mem:
        if limits.memory_reservation:
            cgroups.write_value(os.path.join(mem, "memory.soft_limit_in_bytes"),
                                limits.memory_reservation)
        if limits.swappiness is not None and limits.swappiness >= 0:
            _write_present(os.path.join(mem, "memory.swappiness"), limits.swappiness,
                           "--memory-swappiness", "this kernel has no memory.swappiness")
        if limits.oom_kill_disable:
            cgroups.write_value(os.path.join(mem, "memory.oom_control"), 1)
    cpu = driver.controller_dir(name, "cpu")
    if cpu and (limits.cpu_rt_period or limits.cpu_rt_runtime):
        write_rt(os.path.join(cpu, "cpu.rt_period_us"), os.path.join(cpu, "cpu.rt_runtime_us"),
                 limits)
    blkio = driver.controller_dir(name, "blkio")
    if limits.blkio_weight or limits.weight_device or limits.throttles:
        if not blkio:
            raise refuse("--blkio-weight", "no blkio cgroup hierarchy is mounted")
        _write_blkio_v1(blkio, limits)
    if limits.device_rules is not None:
        write_devices_v1(driver, name, limits.device_rules)


def write_rt(period_file, runtime_file, limits):
    """--cpu-rt-period/--cpu-rt-runtime (v1 cpu.rt_*): refused unless the
    kernel has real-time group scheduling and bocker's parent group has a
    real-time budget to give (Docker asks its daemon's --cpu-rt-runtime)."""
    if not os.path.exists(runtime_file):
        raise refuse("--cpu-rt-runtime", "this kernel has no real-time group scheduling "
                     "(CONFIG_RT_GROUP_SCHED)")
    try:
        if limits.cpu_rt_period:
            cgroups.write_value(period_file, limits.cpu_rt_period)
        if limits.cpu_rt_runtime:
            cgroups.write_value(runtime_file, limits.cpu_rt_runtime)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        raise refuse("--cpu-rt-runtime", "bocker's parent cgroup has no real-time budget "
                     "for it (its cpu.rt_runtime_us)") from None


def _weight_file(blkio, stem):
    """blkio.weight (CFQ) or blkio.bfq.weight (BFQ), whichever this kernel has."""
    for name in (f"blkio.{stem}", f"blkio.bfq.{stem}"):
        path = os.path.join(blkio, name)
        if os.path.exists(path):
            return path
    return None


def _write_blkio_v1(blkio, limits):
    if limits.blkio_weight or limits.weight_device:
        why = "this kernel has no blkio weight (needs the CFQ or BFQ I/O scheduler)"
        if limits.blkio_weight:
            path = _weight_file(blkio, "weight")
            if not path:
                raise refuse("--blkio-weight", why)
            cgroups.write_value(path, limits.blkio_weight)
        path = _weight_file(blkio, "weight_device") if limits.weight_device else None
        if limits.weight_device and not path:
            raise refuse("--blkio-weight-device", why)
        for major, minor, weight in limits.weight_device or ():
            cgroups.write_value(path, f"{major}:{minor} {weight}")
    from bocker.runtime import resources

    for field, rows in (limits.throttles or {}).items():
        path = os.path.join(blkio, resources.V1_THROTTLE[field])
        for major, minor, rate in rows:
            _write_present(path, f"{major}:{minor} {rate}", resources.flag(field),
                           "this kernel has no blkio throttling")


def write_devices_v1(driver, name, rules):
    """A devices group for --device / --device-cgroup-rule: deny all, then
    Docker's default rules and the container's own.  The child joins it by
    procs_paths() (it exists only for such a container)."""
    d = driver._devices_dir(name)
    if d is None:
        raise refuse("--device", "no devices cgroup hierarchy is mounted")
    os.makedirs(os.path.dirname(d), exist_ok=True)
    os.mkdir(d)
    cgroups.write_value(os.path.join(d, "devices.deny"), "a")
    for rule in DEFAULT_DEVICE_RULES + tuple(rules):
        cgroups.write_value(os.path.join(d, "devices.allow"), rule)


def write_v2(directory, limits):
    """The extra limits into the group's unified directory."""
    if limits.memory_reservation:
        cgroups.write_value(os.path.join(directory, "memory.low"), limits.memory_reservation)
    if limits.swappiness is not None and limits.swappiness >= 0:
        raise refuse("--memory-swappiness", "not supported on cgroup v2")
    if limits.oom_kill_disable:
        warn("--oom-kill-disable: not supported on cgroup v2: discarded")
    if limits.cpu_rt_period or limits.cpu_rt_runtime:
        raise refuse("--cpu-rt-runtime", "cgroup v2 has no real-time group scheduling")
    if limits.cpuset_mems:
        path = os.path.join(directory, "cpuset.mems")
        if not os.path.exists(path):
            cgroups.write_value(os.path.join(os.path.dirname(directory),
                                             "cgroup.subtree_control"), "+cpuset")
        cgroups.write_value(path, limits.cpuset_mems)
    io_why = "the container's cgroup has no io controller (io.weight / io.max)"
    if limits.blkio_weight:
        _write_present(os.path.join(directory, "io.weight"), f"default {limits.blkio_weight}",
                       "--blkio-weight", io_why)
    for major, minor, weight in limits.weight_device or ():
        _write_present(os.path.join(directory, "io.weight"), f"{major}:{minor} {weight}",
                       "--blkio-weight-device", io_why)
    if limits.throttles:
        for line in io_max_lines(limits.throttles):
            _write_present(os.path.join(directory, "io.max"), line, "--device-read-bps",
                           io_why)
    if limits.device_rules:
        raise refuse("--device-cgroup-rule", "bocker loads no BPF device program on "
                     "cgroup v2 (only --device's node is made)")


def io_max_lines(throttles):
    """v2 io.max lines ('8:0 rbps=1048576 wiops=10'), one per device, of
    {throttle field: [(major, minor, rate)]}."""
    from bocker.runtime import resources

    per_device = {}
    for field, rows in throttles.items():
        for major, minor, rate in rows:
            per_device.setdefault((major, minor), {})[resources.V2_THROTTLE[field]] = rate
    return [f"{major}:{minor} " + " ".join(f"{k}={v}" for k, v in sorted(keys.items()))
            for (major, minor), keys in per_device.items()]
