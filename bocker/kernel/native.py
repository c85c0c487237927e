"""Python face of the C shim.  The only module that touches ffi/lib.

Every function raises OSError (errno set, message naming the call and its
path) instead of returning -errno; spawn() raises RunRefused for a request
the shim would refuse (more than MAX_BINDS mounts).
"""
import os
import time
from collections import namedtuple

from bocker._shim import ffi, lib

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MOUNT_ATTR_NODEV = 0x4

# Docker's exit codes for a container that did not reach its own exit
# (csrc/formats.h, through cffi: one definition for C and Python).
EXIT_RUNTIME = lib.SHIM_EXIT_RUNTIME            # bocker or a child step failed
EXIT_CANNOT_EXECUTE = lib.SHIM_EXIT_CANNOT_EXECUTE
EXIT_NOT_FOUND = lib.SHIM_EXIT_NOT_FOUND
EXIT_SIGNAL_BASE = lib.SHIM_EXIT_SIGNAL_BASE    # killed by signal N: base + N

# Most mounts one start makes (volumes, tmpfs, the /etc files); spawn()
# refuses more, as the shim does.
MAX_BINDS = lib.SHIM_MAX_BINDS

_REPORT_SIZE = ffi.sizeof("struct shim_report")


def _check(rc, call, path=None):
    if rc < 0:
        err = -rc
        where = f"{call} {path}" if path else call
        raise OSError(err, f"{where}: {os.strerror(err)}")
    return rc


def _b(s):
    return s.encode() if isinstance(s, str) else s


def mount(source, target, fstype, flags=0, data=None):
    """mount(2)."""
    _check(lib.shim_mount(_b(source) or ffi.NULL, _b(target), _b(fstype) or ffi.NULL,
                          flags, _b(data) or ffi.NULL), "mount", target)


def umount(target, flags=0):
    """umount2(2)."""
    _check(lib.shim_umount(_b(target), flags), "umount", target)


def loop_attach(path, autoclear=True):
    """Attach a file to a free loop device; return (device path, open fd).

    With autoclear the device detaches when its last user goes: keep the
    fd open until the device is mounted, then close it.
    """
    index = ffi.new("int *")
    fd = _check(lib.shim_loop_attach(_b(path), int(autoclear), index), "loop attach", path)
    return f"/dev/loop{index[0]}", fd


def setns(fd, nstype=0):
    """setns(2) for the calling thread."""
    _check(lib.shim_setns(fd, nstype), "setns")


def unshare(flags):
    """unshare(2) for the calling thread (namespaces are per thread)."""
    _check(lib.shim_unshare(flags), "unshare")


def new_netns():
    """Create an empty network namespace; return an fd that keeps it alive.

    A short-lived thread unshares its own netns and opens it, so the
    calling thread never leaves its namespace.  The namespace disappears
    when the last fd (and process) referring to it is gone.
    """
    import threading

    result = {}

    def make():
        try:
            unshare(CLONE_NEWNET)
            result["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            result["error"] = e

    t = threading.Thread(target=make)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["fd"]


class NetnsThread:
    """fn() running in a short-lived thread that has joined the network
    namespace netns_fd (see start_in_netns); wait() for its result."""

    def __init__(self, netns_fd, fn):
        import threading

        self._fn, self._fd, self._result = fn, netns_fd, {}
        self._thread = threading.Thread(target=self._call)
        self._thread.start()

    def _call(self):
        try:
            setns(self._fd, CLONE_NEWNET)
            self._result["value"] = self._fn()
        except BaseException as e:  # handed to the caller's thread
            self._result["error"] = e

    def wait(self):
        """fn's return value, or raise its exception."""
        self._thread.join()
        if "error" in self._result:
            raise self._result["error"]
        return self._result.get("value")


def start_in_netns(netns_fd, fn):
    """Start fn() in a thread inside the network namespace netns_fd; the
    caller goes on meanwhile and must wait() on the returned NetnsThread.

    What the thread opens there belongs to that namespace: sockets, and
    /proc/sys/net (which shows the sysctls of the reader's namespace).
    The calling thread never leaves its own namespace.
    """
    return NetnsThread(netns_fd, fn)


def run_in_netns(netns_fd, fn):
    """fn() in a thread inside the network namespace netns_fd; returns its
    result or raises its exception (see start_in_netns)."""
    return start_in_netns(netns_fd, fn).wait()


def pidfd_open(pid):
    """A pidfd for pid: signals and waits that cannot hit a recycled PID."""
    return _check(lib.shim_pidfd_open(pid), "pidfd_open", str(pid))


def pidfd_send_signal(pidfd, sig):
    """Signal the process behind a pidfd."""
    _check(lib.shim_pidfd_send_signal(pidfd, sig), "pidfd_send_signal")


def socket_in_netns(netns_fd, domain, type_, protocol):
    """Open a socket (an fd) that lives in the network namespace netns_fd."""
    return _check(lib.shim_socket_in_netns(netns_fd, domain, type_, protocol),
                  "socket in netns")


def openat2(dirfd, path, flags, mode=0, resolve=0):
    """openat2(2): open path below dirfd under RESOLVE_* rules; returns an fd."""
    return _check(lib.shim_openat2(dirfd, _b(path), flags, mode, resolve), "openat2", path)


RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


def idmapped_tree(path, userns_fd, attrs=0):
    """A detached clone of the mount tree at path whose ids go through the
    mappings of the user namespace userns_fd (an idmapped mount), with the
    MOUNT_ATTR_* flags attrs; returns its fd, for a child to attach."""
    return _check(lib.shim_idmapped_tree(_b(path), userns_fd, attrs), "idmapped mount", path)


def unix_pair():
    """socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two plain fds."""
    fds = ffi.new("int[2]")
    _check(lib.shim_unix_pair(fds), "socketpair")
    return fds[0], fds[1]


def attach_sockets(dir_fd, name):
    """A start's attach sockets (csrc/formats.h's protocol): (listening on
    name in the directory dir_fd, the starter's end and the monitor's end
    of a connected pair); SOCK_SEQPACKET, CLOEXEC."""
    fds = ffi.new("int[3]")
    _check(lib.shim_attach_sockets(dir_fd, _b(name), fds), "attach socket", name)
    return fds[0], fds[1], fds[2]


def send_fd(sock, fd):
    """Send fd over the unix socket sock (SCM_RIGHTS, one byte of data)."""
    _check(lib.shim_send_fd(sock, fd), "sendmsg")


def exit_code(status):
    """The exit code of a wait status, Docker-style: the process's own, or
    EXIT_SIGNAL_BASE + N if signal N killed it (as bocker-monitor writes
    it in exit.json)."""
    code = os.waitstatus_to_exitcode(status)
    return EXIT_SIGNAL_BASE - code if code < 0 else code


def step_name(step):
    """Name of a child step (see enum shim_step)."""
    return ffi.string(lib.shim_step_name(step)).decode()


class Mount:
    """A volume (source set) or tmpfs (source None) for spawn(); device:
    a --device node's bind (kept openable: not nodev)."""

    __slots__ = ("source", "target", "data", "readonly", "is_file", "device")

    def __init__(self, source, target, data=None, readonly=False, is_file=False, device=False):
        self.source, self.target, self.data = source, target, data
        self.readonly, self.is_file, self.device = readonly, is_file, device


class OciMount:
    """One config.json mount for spawn(oci=...), applied in list order
    after pivot_root at target resolved inside the container.

    fstype None: a bind of the host path source (cloned before
    pivot_root; flags' MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC and atime
    flags set on the clone; recursive: rbind; is_file: make the target a
    file, as is done anyway for a source that is not a directory).  Else
    mount(source, target, fstype, flags, data).  propagation: 0 or
    MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC), set after."""

    __slots__ = ("source", "target", "fstype", "data", "flags", "propagation",
                 "recursive", "is_file")

    def __init__(self, source, target, fstype=None, data=None, flags=0, propagation=0,
                 recursive=False, is_file=False):
        self.source, self.target, self.fstype, self.data = source, target, fstype, data
        self.flags, self.propagation = flags, propagation
        self.recursive, self.is_file = recursive, is_file

    def __repr__(self):
        return (f"OciMount({self.source!r}, {self.target!r}, fstype={self.fstype!r},"
                f" flags={self.flags:#x})")


class OciDevice:
    """One device node for spawn(oci=...): mknod(path, kind|mode,
    makedev(major, minor)) and chown(uid, gid) after the mounts, replacing
    what is at path; in a user namespace the host's node at path is bound
    instead.  kind: "c", "b" or "p"."""

    __slots__ = ("path", "kind", "major", "minor", "mode", "uid", "gid")

    def __init__(self, path, kind="c", major=0, minor=0, mode=0o666, uid=0, gid=0):
        self.path, self.kind, self.major, self.minor = path, kind, major, minor
        self.mode, self.uid, self.gid = mode, uid, gid

    def __repr__(self):
        return f"OciDevice({self.path!r}, {self.kind!r}, {self.major}, {self.minor})"


def default_devices():
    """The devices the runtime spec says every Linux container has
    ("Default Devices"), as runc supplies them whether or not the config
    lists them: append those whose path the config's linux.devices lacks."""
    return [OciDevice(path, "c", major, minor, 0o666) for path, major, minor in (
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))]


CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


class Oci:
    """OCI mode for spawn(): the container's filesystem, devices and
    credentials from a config.json instead of bocker's fixed ones (see
    csrc/shim.h struct shim_oci).  caps: {set name: mask} for CAP_SETS
    (missing: 0); join_ns: [(fd, CLONE_NEW*)] (never CLONE_NEWPID: use
    pidns_fd); umask None: leave it."""

    __slots__ = ("mounts", "devices", "default_links", "masked", "readonly", "caps",
                 "gids", "umask", "no_new_privs", "rootfs_propagation", "domainname",
                 "join_ns", "pidns_fd", "ready", "preserve_fds", "no_pivot")

    def __init__(self, mounts=(), devices=(), default_links=True, masked=(), readonly=(),
                 caps=None, gids=(), umask=None, no_new_privs=False, rootfs_propagation=0,
                 domainname=None, join_ns=(), pidns_fd=-1, ready=False, preserve_fds=0,
                 no_pivot=False):
        self.mounts, self.devices = list(mounts), list(devices)
        self.default_links = default_links
        self.masked, self.readonly = list(masked), list(readonly)
        self.caps = dict.fromkeys(CAP_SETS, 0)
        self.caps.update(caps or {})
        self.gids, self.umask, self.no_new_privs = list(gids), umask, no_new_privs
        self.rootfs_propagation, self.domainname = rootfs_propagation, domainname
        self.join_ns, self.pidns_fd = list(join_ns), pidns_fd
        self.ready, self.preserve_fds, self.no_pivot = ready, preserve_fds, no_pivot


# Most entries of each Oci list (csrc/shim.h): spawn() refuses more.
OCI_LIMITS = {"mounts": lib.SHIM_OCI_MAX_MOUNTS, "devices": lib.SHIM_OCI_MAX_DEVICES,
              "masked": lib.SHIM_OCI_MAX_PATHS, "readonly": lib.SHIM_OCI_MAX_PATHS,
              "gids": lib.SHIM_OCI_MAX_GIDS, "join_ns": lib.SHIM_OCI_MAX_JOIN_NS}
MAX_PRESERVE_FDS = 65536
_DEVICE_KINDS = {"c": ord("c"), "u": ord("c"), "b": ord("b"), "p": ord("p")}


def _oci_refusal(oci):
    """Why the shim would refuse oci (a message), or None."""
    for field, limit in OCI_LIMITS.items():
        n = len(getattr(oci, field))
        if n > limit:
            return f"too many {field.replace('_', ' ')}: {n}, at most {limit}"
    if not 0 <= oci.preserve_fds <= MAX_PRESERVE_FDS:
        return f"preserve_fds out of range: {oci.preserve_fds}"
    for fd, nstype in oci.join_ns:
        if nstype == CLONE_NEWPID:
            return "a PID namespace is joined with pidns_fd, not join_ns"
        if nstype not in _NS_TYPES:
            return f"unknown namespace type {nstype:#x}"
    for d in oci.devices:
        if d.kind not in _DEVICE_KINDS:
            return f"device {_shown(d.path)}: unknown type {d.kind!r}"
    # the child resolves these where it stands: every one must be absolute
    paths = [("mount target", m.target) for m in oci.mounts]
    paths += [("bind source", m.source) for m in oci.mounts if m.fstype is None]
    paths += [("device", d.path) for d in oci.devices]
    paths += [("masked path", p) for p in oci.masked]
    paths += [("read-only path", p) for p in oci.readonly]
    for what, path in paths:
        if isinstance(path, str) and not _encodes(path):
            return f"{what} is not valid UTF-8: {path!r}"
        if not isinstance(path, (str, bytes)) or not _b(path).startswith(b"/"):
            return f"{what} must be an absolute path: {path!r}"
    unknown = set(oci.caps) - set(CAP_SETS)
    if unknown:
        return f"unknown capability set {sorted(unknown)[0]!r}"
    return _oci_value_refusal(oci)


_NS_FILES = {CLONE_NEWNET: "net", CLONE_NEWUTS: "uts", CLONE_NEWIPC: "ipc"}


def _own_namespaces(oci, clone_flags):
    """The CLONE_NEW* bits of the namespaces an OCI container has of its
    own: created, or joined and not the caller's (a config may name
    /proc/1/ns/net: the host's)."""
    own = clone_flags
    for fd, nstype in oci.join_ns:
        name = _NS_FILES.get(nstype)
        if name is None:
            own |= nstype
            continue
        try:
            mine, theirs = os.stat(f"/proc/thread-self/ns/{name}"), os.fstat(fd)
        except OSError:  # not a namespace to count on (setns will say so)
            continue
        if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
            own |= nstype
    return own


def _oci_namespace_refusal(oci, clone_flags, hostname, sysctls):
    """Why an OCI start would change the host (as runc refuses): a hostname
    or domainname without a UTS namespace of its own, a sysctl outside
    the namespaces it has; or None."""
    if hostname is None and oci.domainname is None and not sysctls:
        return None
    from bocker.confine.security import IPC_SYSCTLS

    own = _own_namespaces(oci, clone_flags)
    if (hostname is not None or oci.domainname is not None) and not own & CLONE_NEWUTS:
        return "a hostname or domainname needs a UTS namespace of the container's own"
    for item in sysctls:
        key = item.split("=", 1)[0]
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            need = CLONE_NEWIPC
        elif key.startswith("net."):
            need = CLONE_NEWNET
        elif key in ("kernel.hostname", "kernel.domainname"):
            need = CLONE_NEWUTS
        else:
            return f"sysctl {_shown(key)} is not namespaced: it would change the host"
        if not own & need:
            return (f"sysctl {_shown(key)} needs the container's own {_ns_name(need)} namespace:"
                    " it would change the host's")
    return None


def _shown(text):
    """text as a one-line message may show it: as is if printable, else
    quoted with escapes (a newline in a path must not split the line)."""
    return text if isinstance(text, str) and text.isprintable() else repr(text)


def _encodes(text):
    """True if text is valid UTF-8 once encoded (a lone surrogate, from a
    JSON \\udXXX escape, is not)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _oci_value_refusal(oci):
    """Why oci's strings or numbers would not go into the C structs whole
    (a NUL byte would cut a path short; cffi would raise on a number out
    of its field's range), or None."""
    strings = [s for m in oci.mounts for s in (m.source, m.target, m.fstype, m.data)]
    strings += [d.path for d in oci.devices] + oci.masked + oci.readonly + [oci.domainname]
    for s in strings:
        if s is None:
            continue
        if isinstance(s, str) and not _encodes(s):
            return f"a path or option is not valid UTF-8: {s!r}"
        if b"\0" in _b(s):
            return "a path or option holds a NUL byte"
    numbers = [("capability mask", v, 64) for v in oci.caps.values()]
    numbers += [("gid", g, 32) for g in oci.gids]
    numbers += [(f"device {_shown(d.path)} {name}", getattr(d, name), 32) for d in oci.devices
                for name in ("major", "minor", "mode", "uid", "gid")]
    numbers += [("mount flags", v, 64) for m in oci.mounts for v in (m.flags, m.propagation)]
    numbers += [("rootfs propagation", oci.rootfs_propagation, 64)]
    for what, value, bits in numbers:
        if not isinstance(value, int) or not 0 <= value < 1 << bits:
            return f"{what} out of range: {value!r}"
    if oci.umask is not None and not (isinstance(oci.umask, int) and 0 <= oci.umask <= 0o777):
        return f"umask out of range: {oci.umask!r}"
    return None


CLONE_NEWTIME = 0x00000080
_NS_TYPES = {CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
             CLONE_NEWNET, CLONE_NEWTIME}


def _oci_struct(oci, keep, cstr):
    """Fill a struct shim_oci from oci; keep collects every buffer."""
    o = ffi.new("struct shim_oci *")
    keep.append(o)
    mnt = ffi.new("struct shim_oci_mount[]", max(len(oci.mounts), 1))
    keep.append(mnt)
    for i, m in enumerate(oci.mounts):
        mnt[i].source, mnt[i].target = cstr(m.source), cstr(m.target)
        mnt[i].fstype, mnt[i].data = cstr(m.fstype), cstr(m.data)
        mnt[i].flags, mnt[i].propagation = m.flags, m.propagation
        mnt[i].recursive, mnt[i].is_file = int(m.recursive), int(m.is_file)
    o.mounts, o.n_mounts = mnt, len(oci.mounts)
    dev = ffi.new("struct shim_oci_device[]", max(len(oci.devices), 1))
    keep.append(dev)
    for i, d in enumerate(oci.devices):
        dev[i].path, dev[i].kind = cstr(d.path), _DEVICE_KINDS[d.kind]
        dev[i].major, dev[i].minor, dev[i].mode = d.major, d.minor, d.mode
        dev[i].uid, dev[i].gid = d.uid, d.gid
    o.devices, o.n_devices = dev, len(oci.devices)
    o.default_links = int(oci.default_links)
    o.masked, o.n_masked = _strv(oci.masked, keep), len(oci.masked)
    o.readonly, o.n_readonly = _strv(oci.readonly, keep), len(oci.readonly)
    for name in CAP_SETS:
        setattr(o, f"cap_{name}", oci.caps.get(name, 0))
    gids = ffi.new("unsigned int[]", list(oci.gids) or [0])
    keep.append(gids)
    o.gids, o.n_gids = gids, len(oci.gids)
    o.umask = -1 if oci.umask is None else oci.umask
    o.no_new_privs = int(oci.no_new_privs)
    o.rootfs_propagation = oci.rootfs_propagation
    o.domainname = cstr(oci.domainname)
    ns = ffi.new("struct shim_oci_ns[]", max(len(oci.join_ns), 1))
    keep.append(ns)
    for i, (fd, nstype) in enumerate(oci.join_ns):
        ns[i].fd, ns[i].nstype = fd, nstype
    o.join_ns, o.n_join_ns = ns, len(oci.join_ns)
    o.pidns_fd, o.ready = oci.pidns_fd, int(oci.ready)
    o.preserve_fds, o.no_pivot = oci.preserve_fds, int(oci.no_pivot)
    return o


class Child:
    """A spawned container process that has not exec'd yet."""

    __slots__ = ("pid", "pidfd", "status_fd")

    def __init__(self, pid, pidfd, status_fd):
        self.pid, self.pidfd, self.status_fd = pid, pidfd, status_fd


def _strv(items, keep):
    """A NULL-terminated char *[]; keep holds every buffer alive."""
    arr = [ffi.new("char[]", _b(s)) for s in items]
    vec = ffi.new("char *[]", arr + [ffi.NULL])
    keep.extend(arr)
    keep.append(vec)  # a struct field does not own what it points to
    return vec


def _request(keep, rootfs, argv, env, cwd="/", hostname=None, domainname=None, uid=0, gid=0,
             clone_flags=0, cgroup_fds=(), cgroup_dir_fd=-1, stdio=(-1, -1, -1),
             mounts=(), privileged=False, trace=False, go_fd=-1, join_pidfd=-1,
             status_fd=-1, console_sock=-1, console_size=(0, 0), cap_keep=None, seccomp_filter=None, sysctls=(),
             rlimits=(), readonly_rootfs=False, userns_sock=-1, oci=None, netns_fd=-1,
             groups=()):
    """Fill a struct shim_spawn; keep collects every buffer it points to."""
    if len(mounts) > MAX_BINDS:
        from bocker.errors import RunRefused

        raise RunRefused(f"too many mounts: {len(mounts)} (volumes, tmpfs and the"
                         f" container's /etc files), at most {MAX_BINDS}")
    why = _oci_refusal(oci) if oci is not None else None
    if oci is not None and not why and join_pidfd < 0:
        why = _oci_namespace_refusal(oci, clone_flags, hostname, sysctls)
    both = [t for _, t in (oci.join_ns if oci is not None else ()) if t & clone_flags]
    if oci is not None and oci.pidns_fd >= 0 and clone_flags & CLONE_NEWPID:
        both.append(CLONE_NEWPID)
    if both and not why:
        why = f"the {_ns_name(both[0])} namespace is both joined and created"
    if why:
        from bocker.errors import RunRefused

        raise RunRefused(why)
    def cstr(value):
        if value is None:
            return ffi.NULL
        buf = ffi.new("char[]", _b(value))
        keep.append(buf)
        return buf

    req = ffi.new("struct shim_spawn *")
    keep.append(req)
    req.rootfs = cstr(rootfs)
    req.argv = _strv(argv, keep)
    req.envp = _strv(env, keep)
    req.cwd = cstr(cwd)
    req.hostname = cstr(hostname)
    req.domainname = cstr(domainname)  # after the hostname, in the container's UTS ns
    req.uid, req.gid = uid, gid
    req.clone_flags = clone_flags
    fds = ffi.new("int[]", list(cgroup_fds) or [0])
    keep.append(fds)
    req.cgroup_fds, req.n_cgroup_fds = fds, len(cgroup_fds)
    req.cgroup_dir_fd = cgroup_dir_fd
    req.stdin_fd, req.stdout_fd, req.stderr_fd = stdio
    mnt = ffi.new("struct shim_mount[]", max(len(mounts), 1))
    keep.append(mnt)
    for i, m in enumerate(mounts):
        mnt[i].source, mnt[i].target, mnt[i].data = cstr(m.source), cstr(m.target), cstr(m.data)
        mnt[i].readonly, mnt[i].is_file = int(m.readonly), int(m.is_file)
        mnt[i].device = int(getattr(m, "device", False))
    req.mounts, req.n_mounts = mnt, len(mounts)
    req.privileged, req.trace, req.go_fd = int(privileged), int(trace), go_fd
    req.join_pidfd, req.status_fd, req.console_sock = join_pidfd, status_fd, console_sock
    req.console_rows, req.console_cols = console_size
    if cap_keep is None:  # Docker's default set (less MKNOD)
        from bocker.confine import capabilities

        cap_keep = capabilities.mask(capabilities.DEFAULT)
    req.cap_keep = cap_keep
    if seccomp_filter:
        buf = ffi.new("char[]", bytes(seccomp_filter))
        keep.append(buf)
        req.seccomp_filter, req.seccomp_len = buf, len(seccomp_filter)
    req.sysctls = _strv(sysctls, keep) if sysctls else ffi.NULL
    lim = ffi.new("struct shim_rlimit[]", max(len(rlimits), 1))
    keep.append(lim)
    for i, (resource, soft, hard) in enumerate(rlimits):
        lim[i].resource, lim[i].soft, lim[i].hard = resource, soft, hard
    req.rlimits, req.n_rlimits = lim, len(rlimits)
    req.readonly_rootfs = int(readonly_rootfs)
    req.userns_sock = userns_sock
    req.netns_fd = netns_fd  # (0 would be stdin: ffi zero-fills the struct)
    req.oci = _oci_struct(oci, keep, cstr) if oci is not None else ffi.NULL
    gids = ffi.new("unsigned int[]", list(groups) or [0])
    keep.append(gids)
    req.groups, req.n_groups = (gids, len(groups)) if groups else (ffi.NULL, 0)
    return req


def spawn(rootfs, argv, env, **options):
    """clone() a container child that runs the shim's child steps.

    options: cwd, hostname, domainname (setdomainname after the hostname),
    uid, gid, clone_flags, cgroup_fds (cgroup
    files the child writes "0" into to join), cgroup_dir_fd (v2: born in
    that group), stdio, mounts (at most MAX_BINDS: more raises RunRefused),
    privileged, trace, go_fd (the child waits for a byte on it; it closes
    every fd it is not given, so the parent's death is EOF), join_pidfd
    (exec into a running container), console_sock, console_size ((rows,
    cols) of its pty, (0, 0): unset), userns_sock (with
    CLONE_NEWUSER: the child waits on it for its idmapped rootfs; with
    oci, for one byte once its maps are written), oci (an Oci: OCI mode,
    see that class; a list past OCI_LIMITS raises RunRefused).
    Returns a Child; read its status with read_reports().  Buffers only
    have to live for this call: the child has its own copy of memory.
    """
    keep = []
    req = _request(keep, rootfs, argv, env, **options)
    out = ffi.new("struct shim_child *")
    _check(lib.shim_spawn(req, out), "clone")
    return Child(out.pid, out.pidfd, out.status_fd)


def spawn_monitored(rootfs, argv, env, monitor_argv, pass_fds, status_fd, **options):
    """Start a container under its bocker-monitor process, which gets the
    container's PID and pidfd after monitor_argv[0].

    The container reports its steps on status_fd (a pipe's write end the
    caller made); pass_fds stay open in the monitor.  Returns
    (container_pid, monitor_pid).
    """
    keep = []
    req = _request(keep, rootfs, argv, env, status_fd=status_fd, **options)
    mon_argv = _strv(monitor_argv, keep)
    fds = ffi.new("int[]", list(pass_fds) or [0])
    pid = ffi.new("int *")
    monitor = _check(lib.shim_spawn_monitored(req, mon_argv, fds, len(pass_fds), pid),
                     "clone")
    return pid[0], monitor


def seccomp_compile(default_action, arches, rules, known, max_bytes):
    """Compile seccomp rules with libseccomp: rules are (name, action word,
    [(arg index, op, value, value_two)]); arches libseccomp names besides
    the native one; known every name the profile mentions (its newest
    sets the ENOSYS bound).  Returns the BPF program as bytes."""
    keep = []
    arr = ffi.new("struct shim_seccomp_rule[]", max(len(rules), 1))
    for i, (name, action, args) in enumerate(rules):
        cname = ffi.new("char[]", _b(name))
        cargs = ffi.new("struct shim_seccomp_arg[]", max(len(args), 1))
        keep += (cname, cargs)
        for j, (index, op, value, value_two) in enumerate(args):
            cargs[j].index, cargs[j].op = index, op
            cargs[j].value, cargs[j].value_two = value, value_two
        arr[i].name, arr[i].action, arr[i].args, arr[i].n_args = cname, action, cargs, len(args)
    out = ffi.new("char[]", max_bytes)
    bad = ffi.new("int *")
    n = lib.shim_seccomp_compile(default_action, _strv(arches, keep), arr, len(rules),
                                 _strv(known, keep), out, max_bytes, bad)
    if n < 0:
        what = f"seccomp rule for {rules[bad[0]][0]}" if bad[0] >= 0 else "seccomp compile"
        _check(n, what)
    return bytes(ffi.buffer(out, n))


def seccomp_resolve(name):
    """The native number of a system call, or None if libseccomp does not
    know it for this architecture."""
    nr = lib.shim_seccomp_resolve(_b(name))
    return None if nr < 0 else nr


def seccomp_build_id():
    """What, besides a profile and capabilities, a compiled filter depends
    on: the libseccomp version and this build of the shim."""
    import bocker._shim as shim

    st = os.stat(shim.__file__)
    return f"{lib.shim_seccomp_lib_version()}/{st.st_size}/{st.st_mtime_ns}"


_READY_STEP = "wait for parent"

Report = namedtuple("Report", "step err ns index")
Report.__doc__ = """One child step: its name, errno (0: done), CLOCK_MONOTONIC ns when
it ended, and the index of what it failed on (see step_object), or -1."""

# Steps over a list of the request: which list their report's index is in,
# and how an entry of it is named in a message.
# A field "oci.X" is the list X of the options' Oci.
_INDEXED_STEPS = {
    "open_tree volumes": ("mounts", lambda m: m.source),
    "open_tree bind mounts": ("oci.mounts", lambda m: m.source),
    "fsmount": ("oci.mounts", lambda m: m.target),
    "mount": ("oci.mounts", lambda m: m.target),
    "open_tree device nodes": ("oci.devices", lambda d: d.path),
    "mknod": ("oci.devices", lambda d: d.path),
    "mask /proc and /sys paths": ("oci.masked", str),
    "read-only /proc paths": ("oci.readonly", str),
    "setns namespaces": ("oci.join_ns", lambda ns: f"{_ns_name(ns[1])} namespace"),
    "move_mount volumes": ("mounts", lambda m: m.target),
    "mount tmpfs": ("mounts", lambda m: m.target),
    "write sysctls": ("sysctls", lambda kv: kv.split("=", 1)[0]),
    "setrlimit": ("rlimits", lambda r: f"resource {r[0]}"),
}


def _ns_name(nstype):
    names = {CLONE_NEWNS: "mount", CLONE_NEWCGROUP: "cgroup", CLONE_NEWUTS: "uts",
             CLONE_NEWPID: "pid",
             CLONE_NEWIPC: "ipc", CLONE_NEWUSER: "user", CLONE_NEWNET: "network",
             CLONE_NEWTIME: "time"}
    return names.get(nstype, hex(nstype))


def step_object(report, options):
    """What a failed report's step was working on, named from the spawn
    options it was started with (a volume's path, a sysctl's key), or
    None if the step works on no list or the index is out of it."""
    field, name = _INDEXED_STEPS.get(report.step, (None, None))
    if field and field.startswith("oci."):
        oci = options.get("oci")
        items = list(getattr(oci, field[4:])) if oci is not None else []
    else:
        items = list(options.get(field) or ()) if field else []
    if not 0 <= report.index < len(items):
        return None
    return name(items[report.index])


def read_reports(status_fd):
    """Read the child's step reports until execve closes the pipe.

    Returns a list of Report (step_name, errno, monotonic_ns, index); a
    failed step, if any, is the last entry with a non-zero errno.  A
    successful execve cannot report its own end: the last entry is then
    ("exec done", 0, the time the pipe closed, -1), which is when the
    kernel closed the CLOEXEC status pipe inside execve.  An OCI child
    with Oci.ready closes the pipe before its gate instead: its last entry
    is then ("wait for parent", 0, ...) itself, the container created and
    waiting, with no "exec done" after it.
    """
    data = bytearray()
    while True:
        chunk = os.read(status_fd, 4096)
        if not chunk:
            closed_ns = time.monotonic_ns()
            break
        data += chunk
    os.close(status_fd)
    out = []
    for off in range(0, len(data) - _REPORT_SIZE + 1, _REPORT_SIZE):
        rec = ffi.from_buffer("struct shim_report *", data[off:off + _REPORT_SIZE])
        out.append(Report(step_name(rec.step), rec.err, rec.ns, rec.index))
    if not (out and (out[-1].err or out[-1].step == _READY_STEP)):
        out.append(Report("exec done", 0, closed_ns, -1))
    return out
