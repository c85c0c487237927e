"""Containers: the only module that composes the resource modules.

launch() reads as the ordered list of steps of one start.  Every resource
is acquired inside an ExitStack whose callbacks undo it, so a failure at
any step leaves nothing behind: no snapshot, cgroup, lease, veth or
process.  Once started, a container is kept either by the attached bocker
process or, detached, by a bocker-monitor process (csrc/monitor.c); both
write exit.json, and finish() releases what the container held.
"""
import contextlib
import os
import select
import signal
import sys
import time

from bocker import ids, state, trace
from bocker.confine import capabilities, seccomp, security, userns
from bocker.errors import BockerError, NoSuchContainer, RunRefused, StartError
from bocker.image import images
from bocker.kernel import cgroups, native, store
from bocker.runtime import records, spec
from bocker.runtime.records import list_all, load, resolve  # noqa: F401  (the API)
from bocker.runtime.spec import RunRequest  # noqa: F401  (the API)

NAMESPACES = (native.CLONE_NEWNS | native.CLONE_NEWPID | native.CLONE_NEWUTS
              | native.CLONE_NEWIPC | native.CLONE_NEWCGROUP)
# built by setup.py beside the compiled shim, at the package's top
MONITOR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "bocker-monitor")


class Started:
    """A container whose command runs, with the starter's handles on it."""

    def __init__(self, record, pid, pidfd, out_fd=-1, err_fd=-1, master=-1, in_fd=-1):
        self.record, self.pid, self.pidfd = record, pid, pidfd
        self.out_fd, self.err_fd, self.master = out_fd, err_fd, master
        self.in_fd = in_fd  # -i: the write end of the container's stdin pipe

    @property
    def id(self):
        return self.record["Id"]


# -------------------------------------------------------------------- run

def run(paths, req, stdout_fd=1, stderr_fd=2):
    """Run a container attached (the library form of `bocker run`): stream
    its output to stdout_fd/stderr_fd and its log, wait, release it, and
    return its exit status (128+N for signal N)."""
    started = create_and_start(paths, req)
    code = attach_and_wait(paths, started, stdout_fd, stderr_fd)
    finish(paths, started.id, code)
    return code


def create_and_start(paths, req, detach=False, tty=False, interactive=False):
    """Create a container from req and start it; returns Started."""
    store.require_btrfs(paths.root)
    image_id = images.resolve(paths, req.image)
    image = images.load(paths, image_id)
    if req.name:
        ids.check_container_name(req.name)
    try:
        req.check()
    except BockerError as e:  # refused before it starts: Docker's 125
        raise RunRefused(str(e)) from None
    if req.ports:
        from bocker.net import network

        if req.network != "bridge":
            raise BockerError("published ports (-p) need --network bridge")
        for p in req.ports:
            network.parse_port(p)
    with contextlib.ExitStack() as undo:
        record = _create(paths, req, image_id, image, undo)
        started = launch(paths, record, req, image.get("config") or {}, undo,
                         detach=detach, tty=tty, interactive=interactive)
        undo.pop_all()
    return started


def _create(paths, req, image_id, image, undo):
    """The container's directory, rootfs snapshot and record."""
    config = image.get("config") or {}
    cid = ids.new_id("ps")
    cdir = paths.container(cid)
    with state.locked(paths.lock):
        if req.name and any(r["Name"] == req.name for r in list_all(paths)):
            raise BockerError(f"the container name '{req.name}' is already in use")
        os.makedirs(paths.containers, exist_ok=True)
        os.mkdir(cdir, 0o700)
        undo.callback(_remove_dir, cdir)
        rootfs = os.path.join(cdir, "rootfs")
        store.snapshot(images.rootfs(paths, image_id), rootfs)
        req.security_opt = seccomp.pin_profile(cdir, req.security_opt)
        record = _new_record(cid, req, image_id, config)
        if req.userns == "auto":
            uid, gid = userns.allocate(paths.userns, cid, userns.pool(),
                                       lambda: os.listdir(paths.containers))
            undo.callback(userns.release, paths.userns, cid)
            record["HostConfig"].update(UidMap=userns.id_map(uid), GidMap=userns.id_map(gid))
            record["Confinement"]["UserNamespace"] = {
                "Mode": "auto", "UidMap": record["HostConfig"]["UidMap"],
                "GidMap": record["HostConfig"]["GidMap"]}
        records.save(paths, record)
    return record


def launch(paths, record, req, config, undo, detach=False, tty=False, interactive=False):
    """Start the container of record: cgroup, stdio, clone, go.

    Every step registers its undo on undo; the caller pops them all once
    the container is running.
    """
    cid = record["Id"]
    cdir = paths.container(cid)
    rootfs = os.path.join(cdir, "rootfs")
    argv = record["Config"]["Cmd"]
    hostname = record["Config"]["Hostname"]
    uid, gid, home = spec.resolve_user(rootfs, req.user or config.get("User"))
    env = spec.build_env(config.get("Env") or [], req.env, hostname, home)
    if tty:
        env.append("TERM=" + os.environ.get("TERM", "xterm"))
    record["Config"]["Env"] = env
    net = _lease_address(paths, cid, req, undo)
    own_files = spec.container_files(cdir, hostname, net and net["ip"], _resolv_conf(req))
    in_userns = record["HostConfig"].get("UsernsMode") == "auto"
    if in_userns:
        userns.chown_files(own_files, record["HostConfig"])
    mounts = own_files + spec.volume_mounts(req.volumes, req.tmpfs)
    with contextlib.suppress(FileNotFoundError):  # a restart's previous end
        os.unlink(records.exit_path(paths, cid))

    cg = cgroups.driver()
    limits = cgroups.Limits(memory=req.memory, cpu_shares=req.cpu_shares,
                            cpus=req.cpus, pids=security.pids_limit(req.pids_limit))
    cg.create(cid, limits)
    undo.callback(cg.destroy, cid)
    fds = _Fds()  # every fd below is closed exactly once, on success or failure
    undo.callback(fds.close_all)
    procs_fds, cgroup_dir_fd = fds.add(*_cgroup_handles(cg, cid))
    io = _Stdio(detach, tty, interactive, fds)
    go_r, go_w = fds.add(*os.pipe2(os.O_CLOEXEC))
    status_r, status_w = fds.add(*os.pipe2(os.O_CLOEXEC))
    ns_parent, ns_child = fds.add(*native.unix_pair()) if in_userns else (-1, -1)

    flags = (NAMESPACES | (0 if req.network == "host" else native.CLONE_NEWNET)
             | (native.CLONE_NEWUSER if in_userns else 0))
    options = dict(cwd=req.workdir or config.get("WorkingDir") or "/", hostname=hostname,
                   uid=uid, gid=gid, clone_flags=flags, cgroup_fds=procs_fds,
                   cgroup_dir_fd=cgroup_dir_fd, stdio=io.child_stdio(), mounts=mounts,
                   privileged=req.privileged, trace=trace.enabled(), go_fd=go_r,
                   console_sock=io.console_child,
                   userns_sock=ns_child, **_confinement(req, paths))
    with trace.span("clone", flags=_flag_names(flags), argv=argv) as sp:
        if detach:
            oom = cg.oom_file(cid) or "-"
            monitor_argv = [MONITOR, str(io.out_r), str(io.err_r),
                            records.log_path(paths, cid), records.exit_path(paths, cid), oom,
                            sys.executable, "-m", "bocker.runtime.finish", paths.root, cid]
            pid, runner = native.spawn_monitored(rootfs, argv, env, monitor_argv,
                                                 [io.out_r, io.err_r], status_w, **options)
            pidfd = native.pidfd_open(pid)
        else:
            child = native.spawn(rootfs, argv, env, status_fd=status_w, **options)
            pid, pidfd, runner = child.pid, child.pidfd, os.getpid()
        sp.set(f"pid {pid}")
    undo.callback(_kill_and_reap, pid, pidfd, not detach)
    # The child has its own copies now.
    fds.close(status_w, go_r, cgroup_dir_fd, ns_child, *procs_fds, *io.child_ends())
    if in_userns:  # the child waits for its id maps and idmapped rootfs
        with trace.span("userns maps+idmapped rootfs", pid=pid,
                        uid=record["HostConfig"]["UidMap"][0]["HostID"]):
            userns.hand_over(pid, rootfs, record["HostConfig"], fds.release(ns_parent))

    # The child is making its mounts now; the parent wires its network in
    # parallel, then lets it exec.
    if net:
        try:
            record["NetworkSettings"] = _wire_network(cid, pid, req, net, undo)
        except OSError:
            # a child that failed a step early is gone with its netns: its
            # report, not our ENOENT, says what went wrong
            fds.close(go_w)
            _check_reports(fds.release(status_r), pid, argv, options)
            raise
    try:
        os.write(go_w, b"g")
    except BrokenPipeError:
        pass  # the child failed a step already: its report says which
    fds.close(go_w)
    _check_reports(fds.release(status_r), pid, argv, options)
    master = io.receive_master()

    st = record["State"]
    st.update(Status="running", Running=True, Pid=pid,
              PidStartTime=records.proc_start_time(pid), RunnerPid=runner,
              RunnerStartTime=records.proc_start_time(runner), StartedAt=records.now_iso(),
              FinishedAt="", ExitCode=0, OOMKilled=False, Error="")
    records.save(paths, record)
    if detach:  # the monitor reads the output pipes
        fds.close(io.out_r, io.err_r)
        return Started(record, pid, pidfd)
    return Started(record, pid, pidfd, fds.release(io.out_r), fds.release(io.err_r), master,
                   fds.release(io.in_w))


def _confinement(req, paths):
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


def _network_config(paths):
    """The bridge network `bocker setup` made for this root."""
    from bocker.errors import NotSetUp
    from bocker.net import network

    try:
        return state.read_json(paths.network)
    except FileNotFoundError:
        raise NotSetUp(f"{network.DEFAULT_BRIDGE} not found: run 'bocker setup'") from None


def _lease_address(paths, cid, req, undo):
    """For --network bridge: check the bridge, lease an address."""
    if req.network != "bridge":
        return None
    from bocker.net import network

    config = _network_config(paths)
    network.check_ready(config["bridge"])
    with trace.span("ipam lease", subnet=config["subnet"]) as sp:
        try:
            ip = network.lease(paths.leases, cid, config["subnet"])
        except network.SubnetFull:
            # leases of containers that no longer run are stale (a crash,
            # a reboot): reclaim them once before giving up
            live = {r["Id"] for r in list_all(paths) if r["State"].get("Running")}
            network.prune(paths.leases, live | {cid})
            ip = network.lease(paths.leases, cid, config["subnet"])
        sp.set(ip)
    undo.callback(network.release, paths.leases, cid)
    return dict(config, ip=ip)


def _resolv_conf(req):
    """The container's resolv.conf text.  With the host's network, the
    host's own file as it is (its stub resolver on 127.0.0.53 is reachable
    there); otherwise without loopback resolvers, or with --dns."""
    if req.network == "host" and not req.dns:
        try:
            with open("/etc/resolv.conf") as f:
                return f.read()
        except OSError:
            return ""
    from bocker.net import network

    return network.resolv_conf(req.dns or None)


def _wire_network(cid, pid, req, net, undo):
    """eth0 in the child's new network namespace (its host veth admitted
    to the anti-spoofing guard), and its published ports; returns the
    record's NetworkSettings."""
    from bocker.net import network

    netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with trace.span("netlink veth+addr+route", container=cid, ip=net["ip"],
                        bridge=net["bridge"], netns_fd=netns) as sp:
            settings = network.attach(cid, netns, net["ip"], net["subnet"], net["bridge"],
                                      net["table"])
            sp.set(settings["host_veth"])
    finally:
        os.close(netns)
    undo.callback(network.detach, cid, net["ip"], net["table"])
    ports = [network.parse_port(p) for p in req.ports]
    if ports:
        with trace.span("nft publish", container=cid, ports=[str(p) for p in ports]):
            network.publish(cid, net["ip"], ports, net["table"])
        undo.callback(network.unpublish, cid, net["table"])
    return {"IPAddress": settings["ip"], "IPPrefixLen": settings["prefixlen"],
            "MacAddress": settings["mac"], "Gateway": settings["gateway"],
            "Bridge": net["bridge"], "HostVeth": settings["host_veth"], "Guarded": True,
            "Ports": {f"{p.container_port}/{p.proto}": [
                {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)}]
                for p in ports}}


def _release_network(paths, record):
    """Give back the address (its lease and its admission to the
    anti-spoofing guard: the record then says Guarded false, so a second
    call has nothing to do) and the published ports of an exited
    container.  Its veth goes with its network namespace (the kernel
    removes the pair once the last process in it has gone)."""
    if record["HostConfig"].get("NetworkMode") != "bridge":
        return
    from bocker.net import network

    settings = record.get("NetworkSettings", {})
    try:
        table = _network_config(paths)["table"]
    except BockerError:
        table = None    # torn down since: its tables, and what they held, are gone
    with trace.span("ipam release", container=record["Id"]):
        network.release(paths.leases, record["Id"])
        # The guard admits the address's MAC and IP: they go together.
        if settings.get("Guarded") and table:
            network.unguard(record["Id"], settings["IPAddress"], table)
            settings["Guarded"] = False
    if settings.get("Ports") and table:
        with trace.span("nft unpublish", container=record["Id"]):
            network.unpublish(record["Id"], table)


def _cgroup_handles(cg, cid):
    """(v1 `tasks` fds the child writes itself into, group dir fd to
    clone into): v2 births the child in its group, v1 makes it join."""
    group = cg.clone_into(cid)
    if group:
        return [], os.open(group, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cg.procs_paths(cid)], -1


class _Fds:
    """The fds a start opened: each is closed once, by close() as soon as
    it is not needed, or by close_all() if the start fails."""

    def __init__(self):
        self.open = set()

    def add(self, *items):
        """Track fds (ints, or lists of ints); returns items unchanged."""
        for item in items:
            self.open.update(item if isinstance(item, list) else [item])
        self.open.discard(-1)
        return items

    def close(self, *fds):
        for fd in fds:
            if fd in self.open:
                self.open.discard(fd)
                os.close(fd)

    def release(self, fd):
        """Stop tracking fd: its new owner closes it."""
        self.open.discard(fd)
        return fd

    def close_all(self):
        self.close(*list(self.open))


class _Stdio:
    """The container's stdin/stdout/stderr for one start.

    attached: output through pipes that bocker tees; -i relays our stdin
    through a pipe.  No fd of the caller's is ever handed to the container.
    detached: output through pipes that the monitor logs.
    -t: a pty from the container's own devpts, its master sent back over
    a socket pair.
    """

    def __init__(self, detach, tty, interactive, fds):
        self.interactive = interactive and not detach
        self.fds = fds
        self.out_r = self.out_w = self.err_r = self.err_w = self.in_r = self.in_w = -1
        self.console_parent = self.console_child = -1
        if tty and not detach:
            import socket

            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.console_parent, self.console_child = fds.add(a.detach(), b.detach())
        else:
            self.out_r, self.out_w = fds.add(*os.pipe2(os.O_CLOEXEC))
            self.err_r, self.err_w = fds.add(*os.pipe2(os.O_CLOEXEC))
            if self.interactive:
                self.in_r, self.in_w = fds.add(*os.pipe2(os.O_CLOEXEC))

    def child_stdio(self):
        return (self.in_r, self.out_w, self.err_w)

    def child_ends(self):
        """The ends only the child uses, for the parent to close."""
        return [fd for fd in (self.in_r, self.out_w, self.err_w, self.console_child) if fd >= 0]

    def receive_master(self):
        """The pty master the child sent, for -t; else -1."""
        if self.console_parent < 0:
            return -1
        import socket

        with socket.socket(fileno=self.fds.release(self.console_parent)) as sock:
            _, fds, _, _ = socket.recv_fds(sock, 1, 1)
        return fds[0]


def _check_reports(status_fd, pid, argv, options=None):
    """Read the child's step reports; raise StartError for a failed step,
    naming what it failed on (a volume, a sysctl) from the spawn options."""
    reports = native.read_reports(status_fd)
    if trace.enabled():
        # each report marks the end of its step; a step began where the one
        # before it ended.  "exec done" closes the execve step.
        prev = None
        for step, err, ns, _ in reports:
            if step == "exec done":
                trace.emit("execve", {"argv": argv}, prev, ns - prev, result="exec'd", pid=pid)
            elif not (step == "execve" and not err):  # its end comes as "exec done"
                trace.emit(step, {}, prev or ns, ns - (prev or ns), err=err, pid=pid)
            prev = ns
    failed = [r for r in reports if r[1]]
    if not failed:
        return
    step, err = failed[-1].step, failed[-1].err
    if step == "execve" and err == 2:
        raise StartError(f"executable file not found: {argv[0]}", native.EXIT_NOT_FOUND)
    if step == "execve":
        raise StartError(f"cannot execute {argv[0]}: {os.strerror(err)}",
                         native.EXIT_CANNOT_EXECUTE)
    what = native.step_object(failed[-1], options or {})
    where = f"{step} {what}" if what else step
    raise StartError(f"{where}: {os.strerror(err)}", native.EXIT_RUNTIME)


def attach_and_wait(paths, started, stdout_fd=1, stderr_fd=2, stdin_fd=0):
    """Copy the container's output to ours and to its log (tee), forward
    SIGINT/SIGTERM/SIGHUP to it, and return its exit status."""
    from bocker.runtime import attach

    def forward(sig, _frame):
        with contextlib.suppress(OSError):
            native.pidfd_send_signal(started.pidfd, sig)

    old = {}
    # With a tty, Ctrl-C is a byte the container's pty turns into its own
    # SIGINT; SIGTERM and SIGHUP (our terminal closing) are forwarded either
    # way, so that we stay to reap the container and release what it holds.
    forwarded = (signal.SIGTERM, signal.SIGHUP) + ((signal.SIGINT,) if started.master < 0 else ())
    with contextlib.suppress(ValueError):  # not the main thread: nothing to forward
        for sig in forwarded:
            old[sig] = signal.signal(sig, forward)
    log = attach.LogWriter(records.log_path(paths, started.id))
    try:
        if started.master >= 0:
            attach.pump_tty(started.master, log, stdin_fd, stdout_fd)
        else:
            attach.pump_pipes({started.out_fd: (stdout_fd, b"stdout"),
                               started.err_fd: (stderr_fd, b"stderr")}, log,
                              stdin=(stdin_fd, started.in_fd) if started.in_fd >= 0 else None)
        with trace.span("wait", pid=started.pid) as sp:
            _, status = os.waitpid(started.pid, 0)
            code = _exit_code(status)
            sp.set(f"exit {code}")
    finally:
        log.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        _close_all([started.pidfd])
    return code


def _exit_code(status):
    return native.exit_code(status)


def finish(paths, cid, code=None):
    """Release what an exited container held and record how it ended.

    Called by the attached bocker process (with the exit code) or by the
    detached container's monitor (which wrote exit.json already); safe to
    call twice and on a container being removed.
    """
    cg = cgroups.driver()
    oom = cg.oom_killed(cid)
    with trace.span("cgroup remove", name=cid, driver=f"v{cg.version}"):
        cg.destroy(cid)
    with state.locked(paths.lock):
        try:
            record = state.read_json(records.record_path(paths, cid))
        except FileNotFoundError:
            return  # removed meanwhile: nothing left to record
        if code is not None:
            ended = {"ExitCode": code, "FinishedAt": records.now_iso(), "OOMKilled": oom}
            state.write_json(records.exit_path(paths, cid), ended, durable=False)
        record = records.refresh(paths, record)
        _release_network(paths, record)
        if record["HostConfig"].get("AutoRemove"):
            _remove_dir(paths.container(cid))
            userns.release(paths.userns, cid)
        else:
            records.save(paths, record)


# ---------------------------------------------------------- lifecycle verbs

def _running(paths, ref):
    cid = resolve(paths, ref)
    record = load(paths, cid)
    if not record["State"].get("Running"):
        raise BockerError(f"Container '{ref}' exists but is not running")
    return record


def _pidfd(record):
    """A pidfd for the container's PID 1, checked against its start time
    so a recycled PID is never signalled."""
    st = record["State"]
    pidfd = native.pidfd_open(st["Pid"])
    if records.proc_start_time(st["Pid"]) != st.get("PidStartTime"):
        os.close(pidfd)
        raise BockerError(f"Container '{record['Id']}' exists but is not running")
    return pidfd


def kill(paths, ref, sig=signal.SIGKILL):
    """Send a signal to a running container's PID 1."""
    record = _running(paths, ref)
    pidfd = _pidfd(record)
    try:
        native.pidfd_send_signal(pidfd, sig)
    finally:
        os.close(pidfd)
    return record["Id"]


def stop(paths, ref, timeout=10.0):
    """SIGTERM, then SIGKILL after timeout seconds; returns when it exited.
    A container that is not running is left as it is."""
    cid = resolve(paths, ref)
    record = load(paths, cid)
    if record["State"].get("Running"):
        try:
            pidfd = _pidfd(record)
        except (OSError, BockerError):
            pidfd = None
        if pidfd is not None:
            try:
                native.pidfd_send_signal(pidfd, signal.SIGTERM)
                if not select.select([pidfd], [], [], max(timeout, 0))[0]:
                    native.pidfd_send_signal(pidfd, signal.SIGKILL)
                    select.select([pidfd], [], [], 30)
            except OSError:
                pass  # it exited on its own meanwhile
            finally:
                os.close(pidfd)
        wait(paths, cid)
    return cid


def wait(paths, ref, timeout=None):
    """Block until the container has exited and its end is recorded;
    return its exit code."""
    cid = resolve(paths, ref)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        record = load(paths, cid)
        if not record["State"].get("Running"):
            return record["State"].get("ExitCode", 0)
        try:
            pidfd = _pidfd(record)
        except (OSError, BockerError):
            pidfd = None
        if pidfd is not None:  # sleep until PID 1 exits
            try:
                select.select([pidfd], [], [], 1.0)
            finally:
                os.close(pidfd)
        else:  # exited; its keeper is writing exit.json
            time.sleep(0.005)
        if deadline is not None and time.monotonic() > deadline:
            raise BockerError(f"timed out waiting for container '{ref}'")


def start(paths, ref):
    """Start a stopped container again, detached, with its first options."""
    cid = resolve(paths, ref)
    record = load(paths, cid)
    if record["State"].get("Running"):
        raise BockerError(f"Container '{ref}' is already running")
    req = spec.RunRequest.from_dict(record["Spec"])
    try:
        config = images.load(paths, record["Image"]).get("config") or {}
    except BockerError:
        config = {}
    with contextlib.ExitStack() as undo:
        launch(paths, record, req, config, undo, detach=True)
        undo.pop_all()
    return cid


def exec_in(paths, ref, argv, env=(), workdir=None, user=None, tty=False,
            interactive=False, stdout_fd=1, stderr_fd=2):
    """Run argv inside a running container (its namespaces via its pidfd,
    and its cgroup); return the command's exit status."""
    from bocker.runtime import attach

    record = _running(paths, ref)
    cid = record["Id"]
    req = spec.RunRequest.from_dict(record["Spec"])
    conf = _confinement(req, paths)  # the container's own: its caps and seccomp filter
    pidfd = _pidfd(record)
    rootfs = os.path.join(paths.container(cid), "rootfs")
    uid, gid, home = spec.resolve_user(rootfs, user or record["Config"].get("User"))
    full_env = spec.build_env(record["Config"]["Env"], env, record["Config"]["Hostname"], home)
    if tty:
        full_env.append("TERM=" + os.environ.get("TERM", "xterm"))
    cg = cgroups.driver()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(os.close, pidfd)
        fds = _Fds()
        cleanup.callback(fds.close_all)
        procs, cgroup_dir_fd = fds.add(*_cgroup_handles(cg, cid))
        io = _Stdio(False, tty, interactive, fds)
        with trace.span("clone", join=f"pidfd of pid {record['State']['Pid']}",
                        argv=argv) as sp:
            child = native.spawn("/", argv, full_env,
                                 cwd=workdir or record["Config"]["WorkingDir"] or "/",
                                 uid=uid, gid=gid, join_pidfd=pidfd, cgroup_fds=procs,
                                 cgroup_dir_fd=cgroup_dir_fd, stdio=io.child_stdio(),
                                 privileged=record["HostConfig"].get("Privileged"),
                                 clone_flags=native.CLONE_NEWUSER
                                 if record["HostConfig"].get("UsernsMode") == "auto" else 0,
                                 trace=trace.enabled(), console_sock=io.console_child,
                                 **{k: conf[k] for k in ("cap_keep", "seccomp_filter")})
            sp.set(f"pid {child.pid}")
        cleanup.callback(_close_all, [child.pidfd])
        fds.close(cgroup_dir_fd, *procs, *io.child_ends())
        try:
            _check_reports(child.status_fd, child.pid, argv)
        except StartError:
            os.waitpid(child.pid, 0)
            raise
        log = attach.LogWriter(os.devnull)  # exec output is not the container's log
        try:
            if tty:
                attach.pump_tty(io.receive_master(), log, 0, stdout_fd)
            else:
                attach.pump_pipes({fds.release(io.out_r): (stdout_fd, b"stdout"),
                                   fds.release(io.err_r): (stderr_fd, b"stderr")}, log,
                                  stdin=(0, fds.release(io.in_w)) if io.in_w >= 0 else None)
        finally:
            log.close()
        _, status = os.waitpid(child.pid, 0)
    return _exit_code(status)


def remove(paths, ref, force=False):
    """Delete a container: snapshot, cgroup, record (-f kills it first)."""
    cid = resolve(paths, ref)
    record = load(paths, cid)
    if record["State"].get("Running"):
        if not force:
            raise BockerError(f"container '{ref}' is running: stop it first or use -f")
        stop(paths, cid, timeout=0)
    with trace.span("cgroup remove", name=cid):
        cgroups.driver().destroy(cid)
    _release_network(paths, record)
    if record["HostConfig"].get("NetworkMode") == "bridge":
        from bocker.net import network

        with trace.span("netlink delete veth", container=cid):
            network.detach(cid)  # the kernel would, a little later
    with state.locked(paths.lock):
        _remove_dir(paths.container(cid))
    userns.release(paths.userns, cid)
    return cid


def commit(paths, ref, image_ref=None, name=None):
    """Make an image of a container's filesystem.

    With image_ref (p8952/bocker's form) the image's content is replaced
    and its ID kept: returns (removed_id, created_id), both that ID.
    Otherwise a new image is created: returns (None, new_id).
    """
    cid = resolve(paths, ref)
    record = load(paths, cid)
    rootfs = os.path.join(paths.container(cid), "rootfs")
    source = f"container {cid}"
    if image_ref and not name:
        image_id = images.resolve(paths, image_ref)
        images.replace_rootfs(paths, image_id, rootfs, source)
        return image_id, image_id
    try:
        config = images.load(paths, record["Image"]).get("config", {})
    except BockerError:  # its image was removed since: start from nothing
        config = {}
    new_id = images.create(paths, source, None, name=name or image_ref, config=config,
                           snapshot_of=rootfs)
    return None, new_id


# ---------------------------------------------------------------- helpers

def _kill_and_reap(pid, pidfd, is_child):
    with contextlib.suppress(OSError):
        native.pidfd_send_signal(pidfd, signal.SIGKILL)
    if is_child:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    else:  # the monitor reaps it; wait until it is gone
        select.select([pidfd], [], [], 10)
    _close_all([pidfd])


def _close_all(fds):
    for fd in fds:
        if fd is not None and fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def _flag_names(flags):
    """clone3's flags as passed (NEWCGROUP is unshared by the child after
    it is in its cgroup, so that the group is the namespace's root)."""
    names = {native.CLONE_NEWNS: "NEWNS", native.CLONE_NEWPID: "NEWPID",
             native.CLONE_NEWUTS: "NEWUTS", native.CLONE_NEWIPC: "NEWIPC",
             native.CLONE_NEWNET: "NEWNET", native.CLONE_NEWUSER: "NEWUSER"}
    return "|".join(["PIDFD"] + [n for bit, n in names.items() if flags & bit])


def _remove_dir(cdir):
    store.remove_dir(cdir, "container.json")


def _confinement_summary(req):
    """What inspect shows of the container's confinement, layer by layer."""
    sec = security.parse_security_opts(req.security_opt)
    caps = capabilities.effective(req.cap_add, req.cap_drop, req.privileged)
    return {"Capabilities": capabilities.names(caps),
            "Seccomp": "unconfined" if req.privileged else sec["seccomp"],
            "NoNewPrivileges": not req.privileged,
            "MaskedPaths": not req.privileged, "ReadonlyPaths": not req.privileged,
            "UserNamespace": {"Mode": "host"}}


def _new_record(cid, req, image_id, config):
    argv = spec.build_argv(req.command, config, req.entrypoint)
    hostname = req.hostname or cid
    return {
        "Id": cid,
        "Name": req.name or cid,
        "Created": time.time(),
        "Image": image_id,
        "ImageName": req.image,
        "Path": argv[0],
        "Args": argv[1:],
        "Config": {"Cmd": argv, "Env": [], "Hostname": hostname,
                   "WorkingDir": req.workdir or config.get("WorkingDir") or "",
                   "User": req.user or config.get("User") or "", "Image": req.image},
        "State": {"Status": "created", "Running": False, "Pid": 0, "ExitCode": 0,
                  "OOMKilled": False, "StartedAt": "", "FinishedAt": "", "Error": ""},
        "HostConfig": {"Memory": req.memory, "CpuShares": req.cpu_shares,
                       "NanoCpus": int((req.cpus or 0) * 1e9),
                       "PidsLimit": security.pids_limit(req.pids_limit) or 0,
                       "NetworkMode": req.network,
                       "AutoRemove": req.remove, "Privileged": req.privileged,
                       "Binds": req.volumes, "Tmpfs": req.tmpfs, "UsernsMode": req.userns,
                       "CapAdd": req.cap_add, "CapDrop": req.cap_drop,
                       "SecurityOpt": req.security_opt, "Sysctls": dict(
                           s.split("=", 1) for s in req.sysctls),
                       "Ulimits": req.ulimits, "ReadonlyRootfs": req.read_only},
        "Confinement": _confinement_summary(req),
        "NetworkSettings": {},
        "Spec": req.to_dict(),
    }


__all__ = ["RunRequest", "run", "create_and_start", "attach_and_wait", "finish", "stop",
           "kill", "wait", "start", "exec_in", "remove", "commit", "list_all", "load",
           "resolve", "NoSuchContainer"]
