"""A bocker-oci container's cgroup: linux.cgroupsPath, made, filled,
frozen, signalled, shown to the container and removed.

The driver follows bocker/kernel/cgroups.py: a cgroup2 mount with memory,
cpu and pids means v2; otherwise the v1 hierarchies (this project's
hybrid CI host: v1 controllers plus a cgroup2 mount holding hugetlb
only).  On a hybrid host the group is also made on the v2 side, and the
container born in it, so controllers only v2 has (hugetlb here) apply.
"""
import errno
import os
import signal
import time

from bocker import errors
from bocker.kernel import cgroups
from bocker.oci import resources as res

ROOT = "/bocker-oci"  # where a default or relative cgroupsPath lives
MAX_PATH = 1024       # bytes of the whole path (the kernel has no smaller bound)
MAX_DEPTH = 32
NAME_MAX = 255
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "cpuset", "freezer", "devices",
                  "blkio", "hugetlb", "net_cls", "net_prio")
SETTLE_TIMEOUT = 10.0  # seconds a freeze or thaw may take before it is an error

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND = 32, 4096


def oci_mount(source, target, fstype, data, flags, propagation=0, recursive=False, is_file=False):
    """A native.OciMount (the shim's; a plain record until it has one)."""
    from bocker.kernel import native

    cls = getattr(native, "OciMount", None)
    if cls is not None:
        return cls(source, target, fstype, data, flags, propagation, recursive, is_file)
    return _Mount(source, target, fstype, data, flags, propagation, recursive, is_file)


class _Mount:
    __slots__ = ("source", "target", "fstype", "data", "flags", "propagation", "recursive",
                 "is_file")

    def __init__(self, *args):
        for name, value in zip(self.__slots__, args):
            setattr(self, name, value)

    def __repr__(self):
        return "OciMount(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


def group_path(cgroups_path, container_id):
    """The absolute group path for linux.cgroupsPath (None or "": ROOT/<id>;
    relative: under ROOT; absolute: as is), checked: no "..", no NUL or
    control characters, at most MAX_DEPTH names of NAME_MAX bytes."""
    field = "linux.cgroupsPath"
    if cgroups_path is None or cgroups_path == "":
        _check_name("container id", container_id)
        return f"{ROOT}/{container_id}"
    if not isinstance(cgroups_path, str):
        raise errors.InvalidArgument(f"{field}: must be a string")
    names = [n for n in cgroups_path.split("/") if n not in ("", ".")]
    for name in names:
        _check_name(field, name)
    if not names:
        raise errors.InvalidArgument(f"{field}: must name a group below the root")
    if len(names) > MAX_DEPTH:
        raise errors.InvalidArgument(f"{field}: must have at most {MAX_DEPTH} levels")
    path = "/" + "/".join(names)
    if not cgroups_path.startswith("/"):
        path = ROOT + path
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise errors.InvalidArgument(f"{field}: must be at most {MAX_PATH} bytes")
    return path


def _check_name(field, name):
    if not isinstance(name, str) or not name:
        raise errors.InvalidArgument(f"{field}: must be a non-empty string")
    if name in (".", "..") or "/" in name:
        raise errors.InvalidArgument(f"{field}: must not contain '..' or '/' in a name")
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in name):
        raise errors.InvalidArgument(f"{field}: must not contain NUL or control characters")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise errors.InvalidArgument(f"{field}: must be valid UTF-8") from None
    if size > NAME_MAX:
        raise errors.InvalidArgument(f"{field}: a name must be at most {NAME_MAX} bytes")


class Layout:
    """The host's cgroup mounts as bocker-oci uses them.

    version 1: hierarchies {controller: mount point}, side: a cgroup2 mount
    point (hybrid) or None.  version 2: v2, the unified mount point."""

    def __init__(self, version, hierarchies=None, v2=None, side=None):
        self.version, self.hierarchies = version, dict(hierarchies or {})
        self.v2, self.side = v2, side

    def roots(self):
        """Every mount point a group is made under (co-mounts once)."""
        if self.version == 2:
            return [self.v2]
        points = list(dict.fromkeys(self.hierarchies.values()))
        return points + ([self.side] if self.side else [])


def detect(mounts=None):
    """The Layout of this host (from /proc/self/mountinfo by default)."""
    mounts = cgroups.read_mounts() if mounts is None else mounts
    v2 = cgroups.find_v2(mounts)
    if v2:
        return Layout(2, v2=v2)
    hierarchies = cgroups.v1_hierarchies(mounts, V1_CONTROLLERS)
    if not hierarchies:
        raise errors.BockerError("no usable cgroup hierarchy is mounted")
    side = next((point for point, fstype, _ in mounts if fstype == "cgroup2"), None)
    return Layout(1, hierarchies, side=side)


def _read(path, limit=1 << 20):
    with open(path, "rb") as f:
        return f.read(limit).decode("utf-8", "replace")


def _controllers(path):
    try:
        return set(_read(os.path.join(path, "cgroup.controllers")).split())
    except FileNotFoundError:
        return set()


class OciCgroup:
    """One container's group (see OCI.md section C).

    made: the group paths above the leaf that an earlier create() made
    (its .made, kept in state.json), so destroy() in another process
    removes those (once empty) and no others; the empty ones under ROOT
    (bocker-oci's own) are removed whatever made says."""

    def __init__(self, cgroups_path, container_id, made=None, layout=None):
        self.path = group_path(cgroups_path, container_id)
        self.made = list(made) if made is not None else None
        self._layout = layout
        # False after a create() of ours that failed (and undid itself):
        # destroy() then leaves alone a group that may be another's (one
        # create refused as in use).  None: made by another process.
        self._owned = None

    @property
    def layout(self):
        if self._layout is None:
            self._layout = detect()
        return self._layout

    # ----------------------------------------------------- where things are

    def _dir(self, root, path=None):
        return root + (path or self.path)

    def dirs(self):
        """The leaf's directory under every root."""
        return [self._dir(r) for r in self.layout.roots()]

    def controller_dirs(self):
        """{controller: leaf directory} for the controllers this host has,
        plus "unified" on v2 (any file of the v2 group)."""
        lay = self.layout
        if lay.version == 2:
            d = self._dir(lay.v2)
            out = {c: d for c in _controllers(d) | {"devices", "unified"}}
            return out
        out = {c: self._dir(m) for c, m in lay.hierarchies.items()}
        if lay.side:
            side = self._dir(lay.side)
            for c in _controllers(side):
                out.setdefault(c, side)
        return out

    def versions(self):
        """{controller: 1 or 2} as resources.plan wants it."""
        lay = self.layout
        if lay.version == 2:
            have = _controllers(lay.v2) | {"devices", "unified"}
            return dict.fromkeys(have, 2)
        out = dict.fromkeys(lay.hierarchies, 1)
        if lay.side:
            for c in _controllers(lay.side):
                out.setdefault(c, 2)
        return out

    def _levels(self):
        """"/a", "/a/b", ... down to the leaf's parent."""
        names = self.path.strip("/").split("/")
        return ["/" + "/".join(names[:i]) for i in range(1, len(names))]

    # ------------------------------------------------------------- lifecycle

    def exists(self):
        """True if the leaf exists under any root."""
        return any(os.path.isdir(d) for d in self.dirs())

    def create(self, resources):
        """Make the group (and missing parents) everywhere and apply
        linux.resources; returns the warnings.  A failure undoes it."""
        plan = res.plan(resources, self.versions(), create=True)  # bad values: nothing made
        warnings, before = list(plan.warnings), self.made
        made, made_leaf = set(), []
        self._owned = False
        try:
            for root in self.layout.roots():
                warnings += self._make(root, made, made_leaf)
            self.made = sorted(made | set(self.made or []))
            warnings += self._apply(plan.writes)
            self._owned = True
        except BaseException:
            self.made = before
            for d in reversed(made_leaf):
                self._remove_tree(d)
            for level in sorted(made, key=len, reverse=True):
                for root in self.layout.roots():
                    _rmdir_empty(self._dir(root, level))
            raise
        return list(dict.fromkeys(warnings))

    def _make(self, root, made, made_leaf):
        """mkdir -p the group under root; v2: enable the controllers in
        each parent; v1 cpuset: copy cpus/mems down.  Returns warnings."""
        for attempt in range(20):
            try:
                return self._make_levels(root, made, made_leaf)
            except FileNotFoundError:
                # a parent removed under us by another container's destroy
                # (it was empty a moment ago): walk down again
                if attempt == 19:
                    raise
        return []

    def _make_levels(self, root, made, made_leaf):
        warnings = []
        v2 = self.layout.version == 2 or root == self.layout.side
        for level in [*self._levels(), self.path]:
            d = self._dir(root, level)
            parent = os.path.dirname(d)
            if v2:
                warnings += _enable_controllers(parent)
            try:
                os.mkdir(d, 0o755)
            except FileExistsError:
                if not os.path.isdir(d) or os.path.islink(d):
                    raise errors.InvalidArgument(
                        f"linux.cgroupsPath: {d} exists and is not a cgroup") from None
                if level == self.path and _has_procs(d):
                    raise errors.InvalidArgument(
                        f"linux.cgroupsPath: {self.path} is in use (it holds processes)") from None
            else:
                if level == self.path:
                    made_leaf.append(d)
                else:
                    made.add(level)
            if root == self.layout.hierarchies.get("cpuset"):
                _copy_cpuset(parent, d)
        return warnings

    def _apply(self, writes):
        """Write a plan's writes; returns warnings for missing files."""
        dirs, warnings, failed = self.controller_dirs(), [], []
        for w in writes:
            d = dirs.get(w.controller)
            if d is None:
                warnings.append(f"{w.field} not applied: this host has no {w.controller} "
                                f"cgroup controller")
                continue
            names = w.file if isinstance(w.file, tuple) else (w.file,)
            path = next((os.path.join(d, n) for n in names if os.path.isfile(os.path.join(d, n))), None)
            if path is None:
                if w.controller == "unified":
                    raise errors.InvalidArgument(f"{w.field}: the group has no file {w.file}")
                if not w.optional:
                    warnings.append(f"{w.field} not applied: the group has no {names[0]}")
                continue
            try:
                cgroups.write_value(path, w.value)
            except OSError as e:
                if not (w.retry and e.errno == errno.EINVAL):
                    raise _refused(w, path, e) from None
                failed.append((w, path))
        for w, path in failed:  # the order that old values forbade, now allowed
            try:
                cgroups.write_value(path, w.value)
            except OSError as e:
                raise _refused(w, path, e) from None
        return list(dict.fromkeys(warnings))

    def update(self, resources):
        """Apply linux.resources to the existing group; returns warnings."""
        if not self.exists():
            raise errors.NotFound(f"cgroup {self.path} does not exist")
        plan = res.plan(resources, self.versions(), create=False)
        return list(dict.fromkeys(plan.warnings + self._apply(plan.writes)))

    def handles(self):
        """(fds of the files the child writes "0" into to join, v2 group
        dir fd for CLONE_INTO_CGROUP or -1): the caller closes them.

        v1 `tasks`, not cgroup.procs, for the reason in
        kernel/cgroups.V1Driver.procs_paths; on a hybrid host the child is
        born in the v2 side's group."""
        lay, fds = self.layout, []
        try:
            if lay.version == 1:
                for point in dict.fromkeys(lay.hierarchies.values()):
                    fds.append(os.open(os.path.join(self._dir(point), "tasks"),
                                       os.O_WRONLY | os.O_CLOEXEC))
            root = lay.v2 if lay.version == 2 else lay.side
            dir_fd = -1
            if root:
                dir_fd = os.open(self._dir(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            return fds, dir_fd
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise

    def destroy(self):
        """Remove the leaf (killing what is left in it and below) and the
        parents create() made if they are empty.  Idempotent; nothing
        after this object's own create() failed (it undid itself)."""
        if self._owned is False:
            return
        self.thaw_quietly()
        for d in self.dirs():
            self._remove_tree(d)
        for level in reversed(self._levels()):
            # ROOT and below are bocker-oci's own: removed once empty even
            # when another container's create made them
            ours = level == ROOT or level.startswith(ROOT + "/")
            if not ours and level not in (self.made or ()):
                continue
            for root in self.layout.roots():
                _rmdir_empty(self._dir(root, level))

    def _remove_tree(self, d):
        try:
            subs = [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return
        for sub in subs:
            self._remove_tree(sub)
        _kill_group(d)
        cgroups.remove_group(d)

    # ------------------------------------------------------ freezer, signals

    def _freezer(self):
        """("v1", freezer dir) or ("v2", group dir); None without a freezer."""
        lay = self.layout
        if lay.version == 2:
            return "v2", self._dir(lay.v2)
        if "freezer" in lay.hierarchies:
            return "v1", self._dir(lay.hierarchies["freezer"])
        return None

    def frozen(self):
        """True if the group is frozen (v1: FROZEN, not FREEZING)."""
        where = self._freezer()
        try:
            if where and where[0] == "v1":
                return _read(os.path.join(where[1], "freezer.state")).strip() == "FROZEN"
            if where:
                return "frozen 1" in _read(os.path.join(where[1], "cgroup.events")).splitlines()
        except FileNotFoundError:
            pass
        return False

    def freeze(self):
        """Freeze every process in the group; returns once they are."""
        self._set_frozen(True)

    def thaw(self):
        """Thaw the group; returns once it is."""
        self._set_frozen(False)

    def thaw_quietly(self):
        """Thaw if frozen (before a kill, which a v1 frozen task ignores)."""
        try:
            if self.frozen():
                self.thaw()
        except OSError:
            pass

    def _set_frozen(self, on):
        where = self._freezer()
        if where is None:
            raise errors.BockerError("this host has no freezer cgroup controller")
        kind, d = where
        if kind == "v1":
            path, value = os.path.join(d, "freezer.state"), "FROZEN" if on else "THAWED"
        else:
            path, value = os.path.join(d, "cgroup.freeze"), "1" if on else "0"
        deadline = time.monotonic() + SETTLE_TIMEOUT
        attempt = 0
        while True:
            # v1 may stay FREEZING while a task sits in an uninterruptible
            # wait: writing again retries the tasks not yet frozen.
            if attempt % 10 == 0:
                cgroups.write_value(path, value)
            if self.frozen() == on:
                return
            if time.monotonic() > deadline:
                if on:
                    cgroups.write_value(path, "THAWED" if kind == "v1" else "0")
                raise errors.BockerError(
                    f"cgroup {self.path}: could not {'freeze' if on else 'thaw'} it in "
                    f"{SETTLE_TIMEOUT:g}s")
            attempt += 1
            time.sleep(0.001 * min(attempt, 20))

    def pids(self):
        """The PIDs in the group and its descendants, in every hierarchy."""
        out = set()
        for d in self.dirs():
            for top, subdirs, _ in os.walk(d):
                try:
                    out.update(int(p) for p in _read(os.path.join(top, "cgroup.procs"), 1 << 24).split())
                except FileNotFoundError:
                    pass
        return sorted(out)

    def kill_all(self, sig=signal.SIGKILL):
        """Send sig to every process in the group.  Frozen meanwhile (if
        not already) so that none forks a child the signal misses."""
        lay = self.layout
        if sig == signal.SIGKILL and lay.version == 2 and _kill_group(self._dir(lay.v2)):
            return
        freeze = self._freezer() is not None and self.exists() and not self.frozen()
        if freeze:
            try:
                self.freeze()
            except errors.BockerError:
                freeze = False  # stuck FREEZING (thawed again): signal anyway
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if freeze:
                self.thaw()

    # ----------------------------------------------------- container's view

    def mounts(self, target, flags):
        """The mounts a config mount of type "cgroup" at target becomes.

        v2: a bind of this group's directory (what a fresh cgroup2 mount
        shows from inside a cgroup namespace, without showing, or letting
        a container without one write to, the host's whole tree); v1: a
        tmpfs with such a bind per hierarchy, named as on the host, and
        the tmpfs made read-only after them if flags say so."""
        lay = self.layout
        base = MS_NOSUID | MS_NODEV | MS_NOEXEC
        if lay.version == 2:
            return [oci_mount(self._dir(lay.v2), target, None, "", flags | base)]
        out = [oci_mount("tmpfs", target, "tmpfs", "mode=755", base)]
        for point in lay.roots():
            name = os.path.basename(point.rstrip("/"))
            out.append(oci_mount(self._dir(point), os.path.join(target, name), None, "",
                                 flags | base))
        if flags & MS_RDONLY:
            out.append(oci_mount("tmpfs", target, "tmpfs", "",
                                 MS_REMOUNT | MS_BIND | MS_RDONLY | base))
        return out


def _refused(w, path, e):
    text = f"{w.field}: the kernel refused {w.value!r} for {os.path.basename(path)} ({os.strerror(e.errno)})"
    if e.errno in (errno.EINVAL, errno.ERANGE, errno.EOVERFLOW):
        return errors.InvalidArgument(text)
    return errors.BockerError(text)


def _kill_group(d):
    """SIGKILL everything in the v2 group d and below through cgroup.kill
    (Linux 5.14+); False where there is no such file (v1, older kernels)."""
    try:
        fd = os.open(os.path.join(d, "cgroup.kill"), os.O_WRONLY | os.O_CLOEXEC)  # never creates
    except OSError:
        return False
    try:
        os.write(fd, b"1")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _has_procs(d):
    try:
        return bool(_read(os.path.join(d, "cgroup.procs")).split())
    except FileNotFoundError:
        return False


def _rmdir_empty(d):
    """rmdir d if it is an empty group (a parent: never kill in it)."""
    try:
        os.rmdir(d)
    except OSError:
        pass


def _enable_controllers(d):
    """Enable in d's cgroup.subtree_control every controller d has;
    returns warnings for those it could not (d holds processes)."""
    have = _controllers(d)
    try:
        enabled = set(_read(os.path.join(d, "cgroup.subtree_control")).split())
    except FileNotFoundError:
        return []
    warnings = []
    for c in sorted(have - enabled):
        try:
            cgroups.write_value(os.path.join(d, "cgroup.subtree_control"), "+" + c)
        except OSError as e:
            warnings.append(f"cgroup v2 controller {c} not enabled in {d}: {os.strerror(e.errno)}")
    return warnings


def _copy_cpuset(parent, d):
    """A new v1 cpuset group has empty cpus and mems (attaching then
    fails with ENOSPC): give it its parent's."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        path = os.path.join(d, name)
        try:
            if not _read(path).strip():
                cgroups.write_value(path, _read(os.path.join(parent, name)).strip())
        except FileNotFoundError:
            pass
