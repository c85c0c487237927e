"""cgroups: one interface, a v1 and a v2 driver chosen at run time.

v1 (separate hierarchies per controller, as on this project's CI host),
v2 (one unified hierarchy), and hybrid hosts (v1 controllers plus a v2
mount holding few or none: crun refuses these, bocker uses the v1 side).
A container's group is <hierarchy>/<parent>/<container_id>, the parent
being $BOCKER_CGROUP_PARENT or "bocker".
"""
import errno
import os
import signal
import time

from bocker import patterns, trace

# freezer: pause/unpause; blkio: stats' BLOCK I/O (v1 only: v2 has both in
# every group)
CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "freezer", "blkio")
CFS_PERIOD_US = 100000


class Limits:
    """Resource limits for one container; None means unlimited.

    memory_swap is Docker's --memory-swap: memory plus swap in bytes, -1
    unlimited, None Docker's default (twice the memory: as much swap as
    memory); it applies only with a memory limit.  cpuset_cpus: the
    kernel's list form ("0-2,4"), or None.  The rest (None / empty: not
    written) are Docker's further flags: memory_reservation (bytes),
    swappiness (0-100), oom_kill_disable, cpu_period/cpu_quota (us; a
    quota of -1 is none), cpuset_mems, cpu_rt_period/cpu_rt_runtime (us),
    blkio_weight (10-1000), weight_device [(major, minor, weight)],
    throttles {runtime.resources.THROTTLES field: [(major, minor, rate)]},
    device_rules: devices-cgroup allow rules ("c 7:3 rwm") for --device
    and --device-cgroup-rule (None: no devices group, bocker's default).
    """

    __slots__ = ("memory", "cpu_shares", "cpus", "pids", "memory_swap", "cpuset_cpus",
                 "memory_reservation", "swappiness", "oom_kill_disable", "cpu_period",
                 "cpu_quota", "cpuset_mems", "cpu_rt_period", "cpu_rt_runtime", "blkio_weight",
                 "weight_device", "throttles", "device_rules")
    _EXTRA = __slots__[6:]

    def __init__(self, memory=None, cpu_shares=None, cpus=None, pids=None, memory_swap=None,
                 cpuset_cpus=None, **extra):
        self.memory, self.cpu_shares, self.cpus, self.pids = memory, cpu_shares, cpus, pids
        self.memory_swap, self.cpuset_cpus = memory_swap, cpuset_cpus
        for key in self._EXTRA:
            setattr(self, key, extra.pop(key, None))
        if extra:
            raise TypeError(f"Limits: unknown {', '.join(extra)}")

    def extra(self):
        """True if any of the further flags is set (else nothing more to write)."""
        return (self.device_rules is not None or self.swappiness is not None
                or any(getattr(self, key) for key in self._EXTRA))

    def cfs(self):
        """(quota, period) in us for cpu.cfs_* / cpu.max, or None: --cpus
        (of the default period), or --cpu-quota/--cpu-period."""
        if self.cpus:
            return int(self.cpus * CFS_PERIOD_US), CFS_PERIOD_US
        if self.cpu_quota or self.cpu_period:
            quota = self.cpu_quota if self.cpu_quota and self.cpu_quota > 0 else -1
            return quota, self.cpu_period or CFS_PERIOD_US
        return None

    def memsw(self):
        """memory+swap in bytes for a memory limit (-1: unlimited)."""
        if self.memory_swap is None:
            return 2 * self.memory
        return self.memory_swap


def parent_name():
    """The parent group all containers live under."""
    return os.environ.get("BOCKER_CGROUP_PARENT", "bocker")


# --cgroup-parent: container name -> its group's path below each
# hierarchy's root, for the containers this process has placed (start) or
# read the record of (runtime/records.py); every other container's group
# is <parent_name()>/<name>
_placed = {}
_PARENT_PART = patterns.lazy(r"[A-Za-z0-9_.@:+-]{1,200}\Z")


def check_parent(text):
    """A --cgroup-parent as given -> its normal form: 'a/b' (relative: below
    bocker's parent group) or '/a/b' (absolute: below each hierarchy's
    root, as Docker's).  Names only: no '.', '..' or empty path; ValueError
    (one line) otherwise."""
    parts = [p for p in str(text).split("/") if p]
    if not parts or len(parts) > 16 or any(p in (".", "..") or not _PARENT_PART.match(p)
                                           for p in parts):
        raise ValueError(f"invalid --cgroup-parent '{str(text)[:80]}': a cgroup path of names "
                         f"(letters, digits, _.@:+-), without '.' or '..'")
    return ("/" if str(text).startswith("/") else "") + "/".join(parts)


def place(name, cgroup_parent):
    """Put container name's group below cgroup_parent (check_parent's
    forms); None or '' leaves it below bocker's parent."""
    if not cgroup_parent:
        _placed.pop(name, None)
        return
    parent = check_parent(cgroup_parent)
    base = parent[1:] if parent.startswith("/") else os.path.join(parent_name(), parent)
    _placed[name] = os.path.join(base, name)


def group_path(name):
    """The group's path below a hierarchy's root ('' name: bocker's parent)."""
    return _placed.get(name) or os.path.join(parent_name(), name)


def _remove_placed_parents(point, name):
    """After destroy: the empty groups a relative --cgroup-parent made below
    bocker's parent go too (an absolute one's stay, as Docker leaves them)."""
    path = _placed.get(name)
    own = parent_name() + "/"
    if not path or not path.startswith(own):
        return
    level = os.path.dirname(path)
    while level.startswith(own):
        try:
            os.rmdir(os.path.join(point, level))
        except OSError:
            return  # not empty (another container's), or gone
        level = os.path.dirname(level)


def read_mounts(mountinfo="/proc/self/mountinfo"):
    """[(mount_point, fstype, super_options)] for cgroup and cgroup2 mounts."""
    out = []
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, opts = (right.split() + ["", "", ""])[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((left.split()[4], fstype, opts))
    return out


def shares_to_weight(shares):
    """cgroup v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000] (runc's map)."""
    shares = min(max(int(shares), 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def write_value(path, value):
    """Write one value into a cgroup file (traced)."""
    with trace.span("cgroup write", file=path, value=value):
        with open(path, "w") as f:
            f.write(str(value))


def _read_key(path, key):
    """The integer after 'key ' in a flat-keyed cgroup file, or 0."""
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
    except FileNotFoundError:
        pass
    return 0


def remove_group(path):
    """Remove a group, killing what is left in it; a missing one is fine."""
    for attempt in range(200):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
        signal_procs(path)
        time.sleep(0.005 * min(attempt + 1, 10))
    os.rmdir(path)


def signal_procs(path, sig=signal.SIGKILL):
    """Send sig to every process listed in the group's cgroup.procs (a
    missing group has none)."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _children(parents):
    """Names of the groups directly under each of parents (a missing
    parent has none)."""
    out = set()
    for d in parents:
        try:
            out.update(e.name for e in os.scandir(d) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            pass
    return out


class V1Driver:
    """One directory per controller hierarchy (co-mounted ones share)."""

    version = 1

    def __init__(self, hierarchies, cpuset=None, devices=None):
        # controller -> mount point, e.g. {"memory": "/sys/fs/cgroup/memory"}
        self.hierarchies = hierarchies
        # the cpuset hierarchy's mount point: used only by a container that
        # asks for --cpuset-cpus (a group there for every one would cost
        # each start its mkdir and two writes)
        self.cpuset = cpuset
        # the devices hierarchy's: only for --device / --device-cgroup-rule
        # (bocker's default confinement has no device to fence: no MKNOD,
        # nodev everywhere but its fresh /dev)
        self.devices = devices

    def _devices_dir(self, name):
        return os.path.join(self.devices, group_path(name)) if self.devices else None

    def _optional_dirs(self, name):
        """The cpuset and devices groups' paths (made only when asked for)."""
        return [d for d in (self._cpuset_dir(name), self._devices_dir(name)) if d]

    def _dirs(self, name):
        mounts = dict.fromkeys(self.hierarchies.values())  # dedupe, keep order
        return [os.path.join(m, group_path(name)) for m in mounts]

    def _dir(self, controller, name):
        return os.path.join(self.hierarchies[controller], group_path(name))

    def create(self, name, limits):
        """Make the group in every hierarchy and write its limits."""
        made = []
        try:
            for d in self._dirs(name):
                os.makedirs(os.path.dirname(d), exist_ok=True)
                with trace.span("cgroup mkdir", path=d):
                    os.mkdir(d)
                made.append(d)
            self._write_limits(name, limits)
        except BaseException:
            for d in reversed(made):
                remove_group(d)
            for extra in (self._cpuset_dir(name), self._devices_dir(name)):
                if extra and os.path.isdir(extra):
                    remove_group(extra)
            if name in _placed:
                for point in set(self.hierarchies.values()) | {self.cpuset, self.devices} - {None}:
                    _remove_placed_parents(point, name)
            raise

    def _write_limits(self, name, limits):
        has = self.hierarchies.__contains__
        if limits.memory and has("memory"):
            d = self._dir("memory", name)
            write_value(os.path.join(d, "memory.limit_in_bytes"), limits.memory)
            # memory+swap as Docker sets it (the file is absent without
            # swap accounting: then only memory is limited, as Docker warns)
            memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):
                write_value(memsw, limits.memsw())
            elif limits.memory_swap not in (None, -1):
                raise no_swap_accounting()
        if limits.cpu_shares and has("cpu"):
            write_value(os.path.join(self._dir("cpu", name), "cpu.shares"), limits.cpu_shares)
        cfs = limits.cfs()
        if cfs and has("cpu"):
            d = self._dir("cpu", name)
            write_value(os.path.join(d, "cpu.cfs_period_us"), cfs[1])
            write_value(os.path.join(d, "cpu.cfs_quota_us"), cfs[0])
        if limits.pids and has("pids"):
            write_value(os.path.join(self._dir("pids", name), "pids.max"), limits.pids)
        if limits.extra():
            from bocker.kernel import cgroupextra

            cgroupextra.write_v1(self, name, limits)
        if limits.cpuset_cpus or limits.cpuset_mems:
            self._make_cpuset(name, limits.cpuset_cpus, limits.cpuset_mems)

    def _cpuset_dir(self, name):
        return os.path.join(self.cpuset, group_path(name)) if self.cpuset else None

    def _make_cpuset(self, name, cpus, mems=None):
        """A cpuset group for --cpuset-cpus/--cpuset-mems: a v1 cpuset group
        starts with no CPUs and no memory nodes, so the parent gets its
        parent's, and the container's group the parent's (or those asked for)."""
        d = self._cpuset_dir(name)
        if d is None:
            raise OSError(errno.ENOENT, "--cpuset-cpus: no cpuset cgroup hierarchy is mounted")
        parent = os.path.dirname(d)
        # every level down to the parent (one: bocker's; more under a
        # --cgroup-parent) gets what it lacks from the level above
        level = self.cpuset
        for part in os.path.dirname(group_path(name)).split("/"):
            up, level = level, os.path.join(level, part)
            if not os.path.isdir(level):
                os.makedirs(level, exist_ok=True)
            for key in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(level, key)) as f:
                    if not f.read().strip():
                        with open(os.path.join(up, key)) as src:
                            write_value(os.path.join(level, key), src.read().strip())
        with trace.span("cgroup mkdir", path=d):
            os.mkdir(d)
        for key, value in (("cpuset.mems", mems), ("cpuset.cpus", cpus)):
            if not value:
                with open(os.path.join(parent, key)) as f:
                    value = f.read().strip()
            write_value(os.path.join(d, key), value)

    def controller_dir(self, name, controller):
        """The group's directory in controller's hierarchy, or None if this
        host has no such v1 hierarchy."""
        if controller in ("cpuset", "devices"):  # made only for a container asking
            return self._cpuset_dir(name) if controller == "cpuset" else self._devices_dir(name)
        point = self.hierarchies.get(controller)
        return os.path.join(point, group_path(name)) if point else None

    def procs_paths(self, name):
        """The files the container's child writes "0" into to join.

        `tasks`, not `cgroup.procs`: moving a whole process takes the
        global cgroup_threadgroup_rwsem for writing, which waits for an RCU
        grace period (5-20 ms here); a thread moving only itself skips that
        lock (cgroup_procs_write_start()).  The child is single-threaded
        until execve, so moving its thread moves the process.
        """
        paths = [os.path.join(d, "tasks") for d in self._dirs(name)]
        for d in self._optional_dirs(name):
            if os.path.isdir(d):  # --cpuset-cpus/-mems, --device only
                paths.append(os.path.join(d, "tasks"))
        return paths

    def clone_into(self, name):
        """v1 has no CLONE_INTO_CGROUP: the child joins by procs_paths()."""
        return None

    def oom_killed(self, name):
        """True if the kernel's OOM killer killed something in the group."""
        path = self.oom_file(name)
        return bool(path) and _read_key(path, "oom_kill") > 0

    def oom_file(self, name):
        """The file whose 'oom_kill N' counts OOM kills in the group."""
        if "memory" not in self.hierarchies:
            return None
        return os.path.join(self._dir("memory", name), "memory.oom_control")

    def destroy(self, name):
        """Remove the group everywhere (idempotent; kills leftovers)."""
        self._thaw(name)
        for d in self._dirs(name) + self._optional_dirs(name):
            remove_group(d)
        if name in _placed:
            for point in set(self.hierarchies.values()) | {self.cpuset, self.devices} - {None}:
                _remove_placed_parents(point, name)

    def _thaw(self, name):
        # a v1 task that is frozen ignores SIGKILL until thawed: a paused
        # container's group would never empty
        d = self.controller_dir(name, "freezer")
        if d is None:
            return
        try:
            with open(os.path.join(d, "freezer.state")) as f:
                frozen = f.read(16).strip() != "THAWED"
            if frozen:
                write_value(os.path.join(d, "freezer.state"), "THAWED")
        except OSError:
            pass  # no group (gone, or never made): nothing frozen

    def children(self):
        """Names of the groups under bocker's parent, in any hierarchy."""
        return _children(self._dirs("") + self._optional_dirs(""))

    def remove_parent(self):
        """Remove the empty parent groups (at `setup --teardown`)."""
        for d in self._dirs("") + self._optional_dirs(""):
            try:
                os.rmdir(d.rstrip("/"))
            except (FileNotFoundError, OSError):
                pass


class V2Driver:
    """The unified hierarchy."""

    version = 2

    def __init__(self, mount):
        self.mount = mount

    def _dir(self, name):
        return os.path.join(self.mount, group_path(name))

    def _ensure_parent(self, name=""):
        parent = os.path.join(self.mount, parent_name())
        if name in _placed:  # --cgroup-parent: each level down to the group's parent
            level = self.mount
            for part in os.path.dirname(_placed[name]).split("/"):
                level = os.path.join(level, part)
                os.makedirs(level, exist_ok=True)
                self._delegate(level)
            return
        if os.path.isdir(parent):
            return
        os.makedirs(parent, exist_ok=True)
        self._delegate(parent)

    @staticmethod
    def _delegate(parent):
        # Delegate the controllers we use to the containers' groups: those
        # the parent got from the root (an io or cpuset the root does not
        # pass down would fail the whole write).
        with open(os.path.join(parent, "cgroup.controllers")) as f:
            available = set(f.read().split())
        wanted = [c for c in ("cpu", "memory", "pids", "io", "cpuset") if c in available]
        if wanted:
            write_value(os.path.join(parent, "cgroup.subtree_control"),
                        " ".join("+" + c for c in wanted))

    def create(self, name, limits):
        """Make the group and write its limits."""
        self._ensure_parent(name)
        d = self._dir(name)
        with trace.span("cgroup mkdir", path=d):
            os.mkdir(d)
        try:
            write_v2_limits(d, limits)
        except BaseException:
            remove_group(d)
            _remove_placed_parents(self.mount, name)
            raise

    def controller_dir(self, name, controller):
        """The group's directory (one for every controller in v2)."""
        return self._dir(name)

    def procs_paths(self, name):
        return [os.path.join(self._dir(name), "cgroup.procs")]

    def clone_into(self, name):
        """The group directory, for clone3(CLONE_INTO_CGROUP)."""
        return self._dir(name)

    def oom_file(self, name):
        return os.path.join(self._dir(name), "memory.events")

    def oom_killed(self, name):
        return _read_key(self.oom_file(name), "oom_kill") > 0

    def destroy(self, name):
        d = self._dir(name)
        try:
            write_value(os.path.join(d, "cgroup.kill"), 1)  # Linux 5.14+
        except OSError:
            pass
        remove_group(d)
        _remove_placed_parents(self.mount, name)

    def children(self):
        """Names of the groups under bocker's parent."""
        return _children([self._dir("")])

    def remove_parent(self):
        try:
            os.rmdir(os.path.join(self.mount, parent_name()))
        except OSError:
            pass


def write_v2_limits(directory, limits):
    """Write cgroup v2 limit files into one group directory."""
    if limits.memory:
        write_value(os.path.join(directory, "memory.max"), limits.memory)
        swap = os.path.join(directory, "memory.swap.max")
        if os.path.exists(swap):  # v2's swap limit is swap alone, Docker's memory+swap
            memsw = limits.memsw()
            write_value(swap, "max" if memsw == -1 else max(memsw - limits.memory, 0))
        elif limits.memory_swap not in (None, -1):
            raise no_swap_accounting()
    if limits.cpuset_cpus:
        cpuset = os.path.join(directory, "cpuset.cpus")
        if not os.path.exists(cpuset):  # the parent's subtree_control lacks cpuset
            control = os.path.join(os.path.dirname(directory), "cgroup.subtree_control")
            write_value(control, "+cpuset")
        write_value(cpuset, limits.cpuset_cpus)
    if limits.cpu_shares:
        write_value(os.path.join(directory, "cpu.weight"), shares_to_weight(limits.cpu_shares))
    cfs = limits.cfs()
    if cfs:
        write_value(os.path.join(directory, "cpu.max"),
                    f"{'max' if cfs[0] < 0 else cfs[0]} {cfs[1]}")
    if limits.pids:
        write_value(os.path.join(directory, "pids.max"), limits.pids)
    if limits.extra():
        from bocker.kernel import cgroupextra

        cgroupextra.write_v2(directory, limits)


def no_swap_accounting():
    """The one-line refusal of a --memory-swap this kernel cannot enforce
    (no swap accounting: Docker warns and limits memory only; bocker says
    so rather than run a limit it was not given)."""
    return OSError(errno.EOPNOTSUPP, "--memory-swap: this kernel has no swap accounting "
                                     "(memory.memsw / memory.swap files): run without it")


def find_v2(mounts, needed=("memory", "cpu", "pids")):
    """The first cgroup2 mount point whose root offers every controller
    in needed, or None."""
    for point, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        try:
            with open(os.path.join(point, "cgroup.controllers")) as f:
                available = set(f.read().split())
        except OSError:
            continue
        if set(needed) <= available:
            return point
    return None


def v1_hierarchies(mounts, controllers=CONTROLLERS):
    """{controller: mount point} of the v1 hierarchies holding any of
    controllers (the first mount of each wins; co-mounted ones share)."""
    hierarchies = {}
    for point, fstype, opts in mounts:
        if fstype == "cgroup":
            for ctrl in opts.split(","):
                if ctrl in controllers:
                    hierarchies.setdefault(ctrl, point)
    return hierarchies


def choose_driver(mounts):
    """Pick the driver for a host from its cgroup mounts.

    A cgroup2 mount that offers memory, cpu and pids wins (pure v2, or a
    hybrid whose v2 side is complete); otherwise the v1 hierarchies.
    """
    point = find_v2(mounts)
    if point:
        return V2Driver(point)
    hierarchies = v1_hierarchies(mounts)
    if hierarchies:
        optional = v1_hierarchies(mounts, ("cpuset", "devices"))
        return V1Driver(hierarchies, optional.get("cpuset"), optional.get("devices"))
    raise OSError(errno.ENOENT, "no usable cgroup hierarchy is mounted")


_driver = None


def driver():
    """The driver for this host (detected once per process)."""
    global _driver
    if _driver is None:
        _driver = choose_driver(read_mounts())
    return _driver
