"""Starting a container: the start path.

create_and_start() checks the request, create.create() makes the
container's directory, snapshot and record, and launch() starts it; each
is the ordered list of its steps, one small function each.  Every step
that acquires something registers its undo on the caller's ExitStack, so
a failure at any step leaves nothing behind: no snapshot, cgroup, lease,
veth, fd or process.

The steps reach the kernel through a host.Host (the shim module, the
cgroup driver, the btrfs store and the network module, with the real ones
as defaults): the seam the unit tests use to check, without root, the order
in which a failed start undoes its steps.
"""
import contextlib
import os
import posixpath
import select
import signal
import sys

from bocker import events, faults, trace
from bocker.confine import capabilities, seccomp, security, userns
from bocker.kernel import cgroups, native, store
from bocker.runtime import (create, mounts, networking, protocol, records, recordshape, reports,
                            spec)
from bocker.runtime.host import Host
from bocker.runtime.stdio import Fds, Stdio, attach_sockets, cgroup_handles, close_quietly

NAMESPACES = (native.CLONE_NEWNS | native.CLONE_NEWPID | native.CLONE_NEWUTS
              | native.CLONE_NEWIPC | native.CLONE_NEWCGROUP)
# built by setup.py beside the compiled shim, at the package's top
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MONITOR = os.path.join(_PACKAGE, "bocker-monitor")
# `run --init`'s PID 1 (csrc/init.c, static), bind-mounted read-only into
# the container's own /dev (a fresh tmpfs: the image is never written)
INIT = os.path.join(_PACKAGE, "bocker-init")
INIT_TARGET = "/dev/init"
# which namespace each of --pid/--ipc/--uts host leaves out
_SHARED = (("pid", native.CLONE_NEWPID), ("ipc", native.CLONE_NEWIPC),
           ("uts", native.CLONE_NEWUTS), ("cgroupns", native.CLONE_NEWCGROUP))


class Started:
    """A container whose command runs, with the starter's handles on it:
    its pidfd and, for an attached start, client: the starter's connected
    socket to the container's monitor (attach protocol, protocol.py)."""

    def __init__(self, record, pid, pidfd, client=-1, tty=False, interactive=False):
        self.record, self.pid, self.pidfd = record, pid, pidfd
        self.client, self.tty, self.interactive = client, tty, interactive

    @property
    def id(self):
        """The container's ID."""
        return self.record["Id"]

    def close(self):
        """Let go of the monitor: if the container is still running or not
        cleaned up yet, the monitor runs the cleanup when it ends."""
        close_quietly(self.client, self.pidfd)
        self.client = self.pidfd = -1

    def cleaned(self):
        """Tell the monitor that we ran the cleanup (finish) ourselves, and
        wait until it is gone (so no monitor outlives our return)."""
        if self.client >= 0:
            with contextlib.suppress(OSError):
                os.write(self.client, protocol.CLEANED)
                _read_until(self.client, lambda msg: False, 10)
        self.close()


# ------------------------------------------------------------- create

def create_and_start(paths, req, detach=False, tty=False, interactive=False, host=None,
                     checked=None, base=None):
    """Create a container from req and start it; returns Started.  -i
    without -d is Docker's StdinOnce: the attached client's end of input
    (or its going away) closes the container's stdin.  checked: what
    create.check_request(req) returned, if the caller ran it already.
    base: (rootfs subvolume, config) for a build's RUN: the container is a
    snapshot of that subvolume (no image resolved, no pool entry; its
    record's Image is "") and config stands for the image's."""
    if base is None:
        ports, image_id, image_config = _checked_image(paths, req, checked)
    else:
        ports = create.check_request(req) if checked is None else checked
        store.require_btrfs(paths.root)
        image_id, image_config = "", base[1]
    with contextlib.ExitStack() as undo:
        record = create.create(paths, req, image_id, image_config, undo, host,
                               rootfs_base=base[0] if base else None)
        started = launch(paths, record, req, image_config, undo, detach=detach, tty=tty,
                         interactive=interactive, stdin_once=interactive and not detach,
                         ports=ports, host=host)
        undo.pop_all()
    return started


def create_only(paths, req, tty=False, interactive=False, host=None, checked=None):
    """`bocker create`: the container of req made (checked, snapshot,
    name, record) but not started; returns its ID.  Its -t and -i are
    kept for the `start` that starts it (lifecycle.start).  checked: as
    create_and_start's."""
    _, image_id, image_config = _checked_image(paths, req, checked)
    with contextlib.ExitStack() as undo:
        record = create.create(paths, req, image_id, image_config, undo, host)
        record["Config"].update(Tty=tty, OpenStdin=interactive, StdinOnce=interactive)
        # nobody keeps a created container: no keeper that could be gone
        record["State"].update(RunnerPid=0, RunnerStartTime=None)
        records.save(paths, record)
        undo.pop_all()
    return record["Id"]


def _checked_image(paths, req, checked):
    """(published ports, image ID, image config) of req: the request
    checked first (a refused option says so before anything, as Docker;
    checked: what check_request returned, if the caller ran it), then the
    root and the image."""
    ports = create.check_request(req) if checked is None else checked
    store.require_btrfs(paths.root)
    image_id = create.image_id(paths, req.image)
    return ports, image_id, create.image_config(paths, image_id)


# ------------------------------------------------------------- launch

class _Launch:
    """One start's state, handed from step to step."""

    def __init__(self, paths, record, req, image_config, host, detach, tty, interactive,
                 stdin_once):
        self.paths, self.record, self.req, self.image_config = paths, record, req, image_config
        self.host, self.detach, self.tty, self.interactive = host, detach, tty, interactive
        self.stdin_once = stdin_once
        self.cid = record["Id"]
        self.rootfs = os.path.join(paths.container(self.cid), "rootfs")
        self.argv = record["Config"]["Cmd"]
        if req.init:  # the command runs as the init's child
            self.argv = [INIT_TARGET, "--", *self.argv]
        self.hostname = record["Config"]["Hostname"]
        self.id_maps = record.get("IdMaps") or {}
        self.fds = Fds()   # every fd of the start is closed exactly once
        self.net = None    # the lease and network.json, for --network bridge
        self.netns = -1    # --network container:NAME: that container's netns
        self.slot = None   # --network bridge from a network slot (net/pool.py)
        self.target = None  # ... and its record
        self.ports = []
        self.pid = self.pidfd = self.runner = None
        self.client = -1   # the starter's socket to the monitor, once cloned
        self.options = None  # the spawn options: a failed step's report names its object


def launch(paths, record, req, image_config, undo, detach=False, tty=False,
           interactive=False, stdin_once=False, ports=None, host=None):
    """Start the container of record under its monitor; returns Started.

    Every step registers its undo on undo; the caller pops them all once
    the container is running.  tty and interactive are Docker's -t and
    -i (stored in the record, for a later start); detach: the starter lets
    go of the monitor once it runs, else Started.client stays connected.
    """
    s = _Launch(paths, record, req, image_config, host or Host(), detach, tty, interactive,
                stdin_once)
    s.ports = networking.parse_ports(req) if ports is None else ports
    _join_network(s, undo)
    uid, gid, env = _user_and_env(s)
    _lease_address(s, undo)
    container_mounts = _container_mounts(s)
    _make_workdir(s, container_mounts)
    _forget_previous_end(s)
    _create_cgroup(s, undo)
    undo.callback(s.fds.close_all)
    child = _open_child_fds(s)
    _clone(s, uid, gid, env, container_mounts, child, undo)
    _close_child_ends(s, child)
    _hand_over_userns(s, child)
    _wire_network(s, child, undo)
    _let_it_exec(s, child)
    _mark_running(s)
    return _started(s)


def _join_network(s, undo):
    """--network container:NAME: open that running container's netns
    (the child joins it) and take its hostname, as Docker does."""
    if not s.req.network.startswith(networking.CONTAINER):
        return
    target, fd = networking.join_target(s.paths, s.req.network)
    s.netns = s.fds.add(fd)[0]
    undo.callback(s.fds.close, fd)
    s.target = target
    s.hostname = s.record["Config"]["Hostname"] = target["Config"]["Hostname"]


def _user_and_env(s):
    """The uid, gid and environment the command runs with (the user is
    looked up in the container's own /etc/passwd); the env is recorded."""
    faults.point("start.user_and_env")
    uid, gid, home = spec.resolve_user(s.rootfs, s.req.user or s.image_config.get("User"))
    env = spec.build_env(s.image_config.get("Env") or [], s.req.env, s.hostname, home)
    if s.tty:
        env.append("TERM=" + os.environ.get("TERM", "xterm"))
    s.record["Config"]["Env"] = env
    return uid, gid, env


def _make_workdir(s, container_mounts):
    """A working directory the image lacks is made (root's, 0755), as
    Docker makes it, resolved inside the rootfs (workdir.py).  One at or
    below a mount's target is left to the child, which makes it after the
    mounts (csrc/mounts.c make_cwd): in the volume, not under its mount
    point in the image's tree."""
    faults.point("start.make_workdir")
    cwd = posixpath.normpath(_cwd(s))
    if cwd == "/" or any(_below(cwd, m.target) for m in container_mounts):
        return
    from bocker.runtime import workdir

    workdir.ensure(s.rootfs, cwd)


def _below(path, target):
    """True if the normalized absolute path is target or inside it."""
    target = posixpath.normpath(target)
    return path == target or path.startswith(target.rstrip("/") + "/")


def _cwd(s):
    return s.req.workdir or s.image_config.get("WorkingDir") or "/"


def _lease_address(s, undo):
    """--network bridge: check the bridge, lease an address."""
    faults.point("start.lease_address")
    if s.req.network == "bridge":
        taken = None if s.id_maps else networking.lease_slot(s.paths, s.cid, undo, s.req)
        if taken:   # a network made ahead: the child joins it (_clone)
            s.net, s.slot = taken
            s.fds.add(s.slot.fd)
        else:
            s.net = networking.lease_address(s.paths, s.cid, undo, s.host.network, s.req)
        s.ports = networking.start_bindings(s.req, s.ports,
                                            s.record["Config"].get("ExposedPorts"))


def _container_mounts(s):
    """The /etc files (owned by the mapped root under --userns auto), then
    -v and --tmpfs."""
    faults.point("start.container_mounts")
    ip, resolv = s.net and s.net["ip"], None
    if s.netns >= 0:    # the joined container's address and resolvers
        ip = (s.target.get("NetworkSettings") or {}).get("IPAddress")
        resolv = mounts.resolv_conf(recordshape.request(s.target))
    own_files = mounts.container_files(s.paths.container(s.cid), s.hostname, ip,
                                       resolv or mounts.resolv_conf(s.req),
                                       networking.extra_hosts(s.paths, s.req))
    if s.id_maps:
        userns.chown_files(own_files, s.id_maps)
    return own_files + mounts.volume_mounts(s.paths, s.record, s.req) + _own_mounts(s.req)


def _own_mounts(req):
    """--init's binary, --ipc host's /dev/shm (the host's, as Docker) or
    --shm-size's /dev/shm (a tmpfs of that size over the default 64 MB one)."""
    out = []
    if req.init:
        out.append(native.Mount(INIT, INIT_TARGET, readonly=True, is_file=True))
    if req.ipc == "host":
        out.append(native.Mount("/dev/shm", "/dev/shm"))
    elif req.shm_size:
        out.append(native.Mount(None, "/dev/shm", data=f"mode=1777,size={req.shm_size}"))
    if req.devices:  # --device: the host's node bound at its path in /dev
        from bocker.runtime import resources

        out += [native.Mount(d.host, d.target, is_file=True, device=True)
                for d in resources.devices(req)]
    return out


def _forget_previous_end(s):
    faults.point("start.forget_previous_end")
    with contextlib.suppress(FileNotFoundError):  # a restart's previous end
        os.unlink(records.exit_path(s.paths, s.cid))


def _create_cgroup(s, undo):
    faults.point("start.create_cgroup")
    req = s.req
    extra = {}
    if req.cgroup_parent:  # where the driver makes (and later finds) its group
        cgroups.place(s.cid, req.cgroup_parent)
    if spec.has_resources(req) or req.cap_add:  # Docker's further flags (resources.py)
        from bocker.runtime import resources

        extra = resources.limits(req, s.host.cgroups.version)
    limits = cgroups.Limits(memory=req.memory, cpu_shares=req.cpu_shares,
                            cpus=req.cpus, pids=security.pids_limit(req.pids_limit),
                            memory_swap=req.memory_swap, cpuset_cpus=req.cpuset_cpus, **extra)
    s.host.cgroups.create(s.cid, limits)
    undo.callback(s.host.cgroups.destroy, s.cid)


def _open_child_fds(s):
    """The fds the child gets: its cgroup's handles, its stdio, the go
    pipe it waits on, the status pipe it reports on and, under --userns
    auto, the socket it waits for its id maps on; and the monitor's
    attach sockets (listening, and a pair whose one end is ours)."""
    faults.point("start.open_child_fds")
    fds = s.fds
    procs_fds, cgroup_dir_fd = fds.add(*cgroup_handles(s.host.cgroups, s.cid))
    io = Stdio(s.tty, s.interactive, fds)
    go_r, go_w = fds.add(*os.pipe2(os.O_CLOEXEC))
    status_r, status_w = fds.add(*os.pipe2(os.O_CLOEXEC))
    ns_parent, ns_child = fds.add(*s.host.native.unix_pair()) if s.id_maps else (-1, -1)
    listener, client, monitor_end = fds.add(*attach_sockets(s.host.native,
                                                            s.paths.container(s.cid)))
    return dict(procs=procs_fds, cgroup_dir=cgroup_dir_fd, stdio=io, go_r=go_r, go_w=go_w,
                status_r=status_r, status_w=status_w, ns_parent=ns_parent, ns_child=ns_child,
                listener=listener, client=client, monitor_end=monitor_end)


def _clone(s, uid, gid, env, container_mounts, child, undo):
    """clone3 the child from a double-forked process that then becomes
    its monitor (bocker-monitor: the container's parent, whatever happens
    to us); the child makes its mounts and then waits for its go byte."""
    faults.point("start.clone")
    req, io, nat = s.req, child["stdio"], s.host.native
    joins = s.netns >= 0 or s.slot is not None   # a container's netns, or a slot's
    flags = (NAMESPACES | (0 if req.network == "host" or joins else native.CLONE_NEWNET)
             | (native.CLONE_NEWUSER if s.id_maps else 0))
    for field, bit in _SHARED:  # --pid/--ipc/--uts host: the host's own
        if getattr(req, field) == "host":
            flags &= ~bit
    groups = spec.resolve_groups(s.rootfs, req.group_add) if req.group_add else []
    options = dict(cwd=_cwd(s),
                   # never a sethostname in the host's UTS namespace
                   hostname=None if req.uts == "host" else s.hostname,
                   domainname=None if req.uts == "host" else req.domainname,
                   uid=uid, gid=gid, groups=groups, clone_flags=flags,
                   cgroup_fds=child["procs"], cgroup_dir_fd=child["cgroup_dir"],
                   stdio=io.child_stdio(), mounts=container_mounts,
                   privileged=req.privileged, trace=trace.enabled(), go_fd=child["go_r"],
                   console_sock=io.console_child, console_size=_console_size(s),
                   userns_sock=child["ns_child"], **confinement_options(req, s.paths))
    if s.netns >= 0:
        options["netns_fd"] = s.netns
    elif s.slot is not None:
        options["netns_fd"] = s.slot.fd
    s.options = options
    monitor_fds = [*io.reader_ends(), child["listener"], child["monitor_end"]]
    mode = "".join(flag for flag, on in (("t", s.tty), ("i", s.interactive),
                                         ("o", s.stdin_once), ("p", req.pid == "host"))
                   if on) or "-"
    cdir = s.paths.container(s.cid)
    monitor_argv = [MONITOR, *map(str, monitor_fds), mode, records.log_path(s.paths, s.cid),
                    records.exit_path(s.paths, s.cid), s.host.cgroups.oom_file(s.cid) or "-",
                    os.path.join(cdir, protocol.SOCKET_NAME),
                    sys.executable, "-m", "bocker.runtime.finish", s.paths.root, s.cid,
                    # --cgroup-parent: where finish finds the group (before the record)
                    *([req.cgroup_parent] if req.cgroup_parent else [])]
    with trace.span("clone", flags=_flag_names(flags), argv=s.argv) as sp:
        s.pid, s.runner = nat.spawn_monitored(s.rootfs, s.argv, env, monitor_argv,
                                              [fd for fd in monitor_fds if fd >= 0],
                                              child["status_w"], **options)
        s.pidfd = nat.pidfd_open(s.pid)
        sp.set(f"pid {s.pid}")
    s.client = s.fds.release(child["client"])
    undo.callback(_kill_and_reap, nat, s.pidfd, s.client)


def _console_size(s):
    """-t: our terminal's window size for the pty, set before the command
    runs (a client sends changes later), else (0, 0)."""
    if not s.tty or s.detach:
        return (0, 0)
    try:
        size = os.get_terminal_size(0)
    except OSError:
        return (0, 0)
    return (size.lines, size.columns)


def _close_child_ends(s, child):
    """The child and the monitor have their own copies now."""
    faults.point("start.close_child_ends")
    s.fds.close(child["status_w"], child["go_r"], child["cgroup_dir"], child["ns_child"],
                *child["procs"], *child["stdio"].child_ends(), *child["stdio"].reader_ends(),
                child["listener"], child["monitor_end"], s.netns)


def _hand_over_userns(s, child):
    """--userns auto: the child waits for its id maps and idmapped rootfs."""
    faults.point("start.hand_over_userns")
    if not s.id_maps:
        return
    with trace.span("userns maps+idmapped rootfs", pid=s.pid,
                    uid=s.id_maps["UidMap"][0]["HostID"]):
        userns.hand_over(s.pid, s.rootfs, s.id_maps, s.fds.release(child["ns_parent"]))


def _wire_network(s, child, undo):
    """The child is making its mounts now; the parent wires its network in
    parallel (eth0, guard, published ports)."""
    faults.point("start.wire_network")
    if not s.net:
        return
    try:
        if s.slot is not None:   # its eth0 is made: the child has the netns
            s.fds.close(s.slot.fd)
            s.slot.fd = -1
            s.record["NetworkSettings"] = networking.wire_slot(s.cid, s.slot, s.net, s.ports,
                                                               undo)
        else:
            s.record["NetworkSettings"] = networking.wire(s.cid, s.pid, s.net, s.ports, undo,
                                                          s.host.network)
    except OSError:
        # a child that failed a step early is gone with its netns: its
        # report, not our ENOENT, says what went wrong
        s.fds.close(child["go_w"])
        _check_reports(s, child)
        raise


def _let_it_exec(s, child):
    """Write the go byte; the child's reports then say how far it got."""
    faults.point("start.let_it_exec")
    if s.req.oom_score_adj is not None:  # before it execs: its children inherit it
        from bocker.runtime import resources

        resources.set_oom_score_adj(s.pid, s.req.oom_score_adj)
    try:
        os.write(child["go_w"], b"g")
    except BrokenPipeError:
        pass  # the child failed a step already: its report says which
    s.fds.close(child["go_w"])
    _check_reports(s, child)


def _check_reports(s, child):
    reports.check(s.fds.release(child["status_r"]), s.pid, s.argv,
                  read_reports=s.host.native.read_reports, options=s.options)


def _mark_running(s):
    faults.point("start.mark_running")
    s.record["Config"].update(Tty=s.tty, OpenStdin=s.interactive, StdinOnce=s.stdin_once)
    s.record["State"].update(
        Status="running", Running=True, Paused=False, Pid=s.pid,
        PidStartTime=records.proc_start_time(s.pid), RunnerPid=s.runner,
        RunnerStartTime=records.proc_start_time(s.runner), StartedAt=records.now_iso(),
        FinishedAt="", ExitCode=0, OOMKilled=False, Error="")
    records.save(s.paths, s.record)
    events.container(s.paths, s.record, "start")


def _started(s):
    faults.point("start.started")
    if s.detach:  # the monitor keeps it; it cleans up when the container ends
        close_quietly(s.client)
        return Started(s.record, s.pid, s.pidfd)
    return Started(s.record, s.pid, s.pidfd, s.client, s.tty, s.interactive)


def confinement_options(req, paths):
    """The shim's confinement options for req: capabilities kept, seccomp
    filter, sysctls, rlimits, read-only root (the request was checked by
    req.check())."""
    caps = capabilities.effective(req.cap_add, req.cap_drop, req.privileged)
    return dict(
        cap_keep=capabilities.mask(caps),
        seccomp_filter=seccomp.for_container(paths, req.security_opt, caps, req.privileged),
        sysctls=[security.parse_sysctl(item, req.network) for item in req.sysctls],
        rlimits=[security.parse_ulimit(item) for item in req.ulimits],
        readonly_rootfs=req.read_only)


def _kill_and_reap(nat, pidfd, client):
    """The undo of a clone: SIGKILL; wait until the monitor has reaped it
    and written its end (its exit message, or its going away); tell it the
    start is undone (so it runs no cleanup of its own while we undo), and
    wait until it is gone (the undos after this one remove the directory
    it writes the log and exit.json into)."""
    with contextlib.suppress(OSError):
        nat.pidfd_send_signal(pidfd, signal.SIGKILL)
    with contextlib.suppress(OSError):
        _read_until(client, lambda msg: msg[:1] == protocol.EXIT, 10)
        os.write(client, protocol.CLEANED)
        _read_until(client, lambda msg: False, 10)
    close_quietly(client, pidfd)


def _read_until(fd, done, timeout):
    """Read the monitor's messages on fd until done(message), EOF (the
    monitor is gone) or timeout seconds without one."""
    while select.select([fd], [], [], timeout)[0]:
        msg = os.read(fd, protocol.MSG_MAX)
        if not msg or done(msg):
            return


def _flag_names(flags):
    """clone3's flags as passed (NEWCGROUP is unshared by the child after
    it is in its cgroup, so that the group is the namespace's root)."""
    names = {native.CLONE_NEWNS: "NEWNS", native.CLONE_NEWPID: "NEWPID",
             native.CLONE_NEWUTS: "NEWUTS", native.CLONE_NEWIPC: "NEWIPC",
             native.CLONE_NEWNET: "NEWNET", native.CLONE_NEWUSER: "NEWUSER"}
    return "|".join(["PIDFD"] + [n for bit, n in names.items() if flags & bit])
