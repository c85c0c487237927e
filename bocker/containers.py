"""Containers: the only module that composes the resource modules.

run() reads as the ordered list of steps of one start.  Every resource is
acquired inside an ExitStack whose callbacks undo it, so a failure at any
step leaves nothing behind: no snapshot, cgroup, lease, veth or process.
"""
import contextlib
import os
import select
import signal
import time

from bocker import cgroups, ids, images, native, state, store, trace
from bocker.errors import BockerError, InvalidArgument, NoSuchContainer, StartError

DEFAULT_MEMORY = 512 * 1024 * 1024  # p8952/bocker's default
DEFAULT_CPU_SHARES = 512
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAMESPACES = (native.CLONE_NEWNS | native.CLONE_NEWPID | native.CLONE_NEWUTS
              | native.CLONE_NEWIPC | native.CLONE_NEWCGROUP)


class RunRequest:
    """Everything `bocker run` can be asked for, already validated by type."""

    def __init__(self, image, command=None, *, name=None, hostname=None, env=(),
                 workdir=None, user=None, memory=None, cpu_shares=None, cpus=None,
                 pids_limit=None, network="none", remove=False, privileged=False,
                 entrypoint=None, volumes=(), tmpfs=(), dns=()):
        self.image, self.command, self.name = image, list(command or []), name
        self.hostname, self.env, self.workdir, self.user = hostname, list(env), workdir, user
        self.memory = DEFAULT_MEMORY if memory is None else memory
        self.cpu_shares = DEFAULT_CPU_SHARES if cpu_shares is None else cpu_shares
        self.cpus, self.pids_limit = cpus, pids_limit
        self.network, self.remove, self.privileged = network, remove, privileged
        self.entrypoint = entrypoint
        self.volumes, self.tmpfs, self.dns = list(volumes), list(tmpfs), list(dns)


# ---------------------------------------------------------------- records

def _record_path(paths, cid):
    return os.path.join(paths.container(cid), "container.json")


def load(paths, cid):
    """A container's record (Docker-shaped: Id, Name, Config, State...)."""
    try:
        return state.read_json(_record_path(paths, cid))
    except FileNotFoundError:
        raise NoSuchContainer(cid) from None


def save(paths, record):
    state.write_json(_record_path(paths, record["Id"]), record)


def list_all(paths):
    """Every container record, oldest first, with State refreshed."""
    out = []
    try:
        entries = os.listdir(paths.containers)
    except FileNotFoundError:
        return out
    for entry in entries:
        if ids.is_id(entry, "ps"):
            try:
                out.append(refresh(state.read_json(_record_path(paths, entry))))
            except FileNotFoundError:
                continue
    return sorted(out, key=lambda r: r["Created"])


def resolve(paths, ref):
    """Container ID for an ID, unique prefix or name."""
    records = {r["Id"]: {r["Name"]} for r in list_all(paths)}
    return ids.resolve(ref, records, NoSuchContainer)


def _proc_start_time(pid):
    """Start time of pid in clock ticks, to tell it from a recycled PID."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(data.rsplit(b")", 1)[1].split()[19])


def refresh(record):
    """Mark a record exited if its process is gone (its runner was killed)."""
    st = record["State"]
    if st.get("Running") and _proc_start_time(st["Pid"]) != st.get("PidStartTime"):
        st.update(Running=False, Status="exited", Pid=0,
                  Error=st.get("Error") or "runtime process disappeared")
    return record


def is_running(record):
    return bool(refresh(record)["State"].get("Running"))


# ------------------------------------------------------ building a request

def build_argv(command, config, entrypoint=None):
    """The argv to exec: Entrypoint + Cmd, as Docker combines them.

    A single COMMAND with whitespace runs through /bin/sh -c, as
    p8952/bocker ran `bocker run img "sleep 5 && ps aux"`.
    """
    entry = list(entrypoint) if entrypoint is not None else list(config.get("Entrypoint") or [])
    if command and len(command) == 1 and not entry and any(c.isspace() for c in command[0]):
        return ["/bin/sh", "-c", command[0]]
    if entrypoint is not None and not command:
        return entry or ["/bin/sh"]
    cmd = list(command) or list(config.get("Cmd") or [])
    return entry + cmd if entry or cmd else ["/bin/sh"]


def build_env(image_env, user_env, hostname, home="/root"):
    """Image Env, then -e values, with PATH, HOSTNAME and HOME defaults."""
    env = {}
    for item in list(image_env) + list(user_env):
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable '{item}'")
        if not sep:  # `-e KEY` passes the caller's value, if any
            if key not in os.environ:
                continue
            value = os.environ[key]
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", hostname)
    env.setdefault("HOME", home)
    return [f"{k}={v}" for k, v in env.items()]


def parse_env_file(path):
    """KEY=VAL lines of an --env-file; blank lines and # comments skipped."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InvalidArgument(f"cannot read env file {path}: {e.strerror}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def resolve_user(rootfs, user):
    """'-u' value (UID[:GID] or NAME[:GROUP]) -> (uid, gid, home)."""
    if not user:
        return 0, 0, "/root"
    name, _, group = str(user).partition(":")
    passwd = _read_db(rootfs, "etc/passwd")
    uid = gid = None
    home = "/"
    for fields in passwd:
        if len(fields) >= 6 and (fields[0] == name or fields[2] == name):
            uid, gid, home = int(fields[2]), int(fields[3]), fields[5]
            break
    if uid is None:
        if not name.isdigit():
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = int(name), int(name) if not group else 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            match = [f for f in _read_db(rootfs, "etc/group") if f and f[0] == group]
            if not match:
                raise InvalidArgument(f"unable to find group {group}")
            gid = int(match[0][2])
    return uid, gid, home


def _read_db(rootfs, rel):
    try:
        fd = os.open(os.path.join(rootfs, rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd) as f:
        return [line.rstrip("\n").split(":") for line in f]


def _host_resolv_conf():
    """The host's resolv.conf minus loopback stub resolvers, which cannot
    answer from inside a container's network namespace."""
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    return "".join(ln + "\n" for ln in lines
                   if not (ln.startswith("nameserver") and
                           (" 127." in ln or " ::1" in ln)))


def _container_files(cdir, hostname, ip=None, resolv=None):
    """/etc/hostname, /etc/hosts, /etc/resolv.conf for the container, kept
    beside its rootfs and bind-mounted, so the image is never altered."""
    hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
             f"{ip or '127.0.1.1'}\t{hostname}\n")
    files = {"hostname": hostname + "\n", "hosts": hosts,
             "resolv.conf": resolv if resolv is not None else _host_resolv_conf()}
    mounts = []
    for name, text in files.items():
        path = os.path.join(cdir, name)
        with open(path, "w") as f:
            f.write(text)
        mounts.append(native.Mount(path, "/etc/" + name, is_file=True))
    return mounts


def _volume_mounts(volumes, tmpfs):
    mounts = []
    for spec in volumes:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/") \
                or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise InvalidArgument(f"invalid volume '{spec}': use HOST_PATH:CONTAINER_PATH[:ro]")
        host = os.path.abspath(parts[0])
        os.makedirs(host, exist_ok=True)
        mounts.append(native.Mount(host, parts[1], readonly=parts[2:] == ["ro"],
                                   is_file=os.path.isfile(host)))
    for spec in tmpfs:
        path, _, opts = spec.partition(":")
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid tmpfs '{spec}': the path must be absolute")
        mounts.append(native.Mount(None, path, data=opts or "mode=1777"))
    return mounts


# ------------------------------------------------------------------- run

def run(paths, req, stdout_fd=1, stderr_fd=2):
    """Run a container attached: stream its output to stdout/stderr and to
    its log, wait, and return its exit status (128+N for signal N)."""
    started = create_and_start(paths, req, attached=True)
    code = attach_and_wait(paths, started, stdout_fd, stderr_fd)
    finish(paths, started, code)
    return code


class Started:
    """A container whose command is running, with the parent's handles."""

    def __init__(self, record, child, out_fd, err_fd):
        self.record, self.child = record, child
        self.out_fd, self.err_fd = out_fd, err_fd

    @property
    def id(self):
        return self.record["Id"]


def create_and_start(paths, req, attached=True):
    """Every step of a start, each undone if a later one fails."""
    image_id = images.resolve(paths, req.image)
    image = images.load(paths, image_id)
    config = image.get("config") or {}
    if req.name:
        ids.check_container_name(req.name)
    argv = build_argv(req.command, config, req.entrypoint)
    cid = ids.new_id("ps")
    hostname = req.hostname or cid
    cdir = paths.container(cid)
    rootfs = os.path.join(cdir, "rootfs")
    cg = cgroups.driver()

    with contextlib.ExitStack() as undo:
        with state.locked(paths.lock):
            if req.name and any(r["Name"] == req.name for r in list_all(paths)):
                raise BockerError(f"the container name '{req.name}' is already in use")
            os.makedirs(paths.containers, exist_ok=True)
            os.mkdir(cdir, 0o700)
            undo.callback(_remove_dir, cdir)
            with trace.span("btrfs snapshot", source=images.rootfs(paths, image_id),
                            target=rootfs):
                store.snapshot(images.rootfs(paths, image_id), rootfs)
            record = _new_record(cid, req, image_id, image, argv, hostname, config)
            save(paths, record)

        uid, gid, home = resolve_user(rootfs, req.user or config.get("User"))
        env = build_env(config.get("Env") or [], req.env, hostname, home)
        record["Config"]["Env"] = env
        mounts = _container_files(cdir, hostname) + _volume_mounts(req.volumes, req.tmpfs)

        limits = cgroups.Limits(memory=req.memory, cpu_shares=req.cpu_shares,
                                cpus=req.cpus, pids=req.pids_limit)
        with trace.span("cgroup create", driver=f"v{cg.version}", name=cid,
                        memory=req.memory, cpu_shares=req.cpu_shares,
                        cpus=req.cpus, pids=req.pids_limit):
            cg.create(cid, limits)
        undo.callback(cg.destroy, cid)
        procs_fds = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cg.procs_paths(cid)]
        undo.callback(_close_all, procs_fds)

        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        undo.callback(_close_all, [out_r, err_r])
        go_r, go_w = os.pipe2(os.O_CLOEXEC)

        flags = NAMESPACES | (0 if req.network == "host" else native.CLONE_NEWNET)
        with trace.span("clone", flags=_flag_names(flags), argv=argv) as sp:
            child = native.spawn(
                rootfs, argv, env, cwd=req.workdir or config.get("WorkingDir") or "/",
                hostname=hostname, uid=uid, gid=gid, clone_flags=flags,
                cgroup_fds=procs_fds, stdio=(-1, out_w, err_w), mounts=mounts,
                privileged=req.privileged, trace=trace.enabled(), go_fd=go_r)
            sp.set(f"pid {child.pid}")
        _close_all([out_w, err_w, go_r] + procs_fds)
        procs_fds.clear()
        undo.callback(_kill_and_reap, child)

        # The child is making its mounts now; the parent could wire its
        # network in parallel here, then lets it exec.
        os.write(go_w, b"g")
        os.close(go_w)
        _check_reports(child, argv)

        st = record["State"]
        st.update(Status="running", Running=True, Pid=child.pid,
                  PidStartTime=_proc_start_time(child.pid), StartedAt=_now())
        save(paths, record)
        undo.pop_all()
    return Started(record, child, out_r, err_r)


def _check_reports(child, argv):
    """Read the child's step reports; raise StartError for a failed step."""
    prev = None
    reports = native.read_reports(child.status_fd)
    for step, err, ns in reports:
        if trace.enabled():
            trace.emit(step, {}, prev or ns, ns - (prev or ns), err=err, pid=child.pid)
        prev = ns
    failed = [r for r in reports if r[1]]
    if not failed:
        return
    step, err, _ = failed[-1]
    if step == "execve" and err == 2:
        raise StartError(f"executable file not found: {argv[0]}", 127)
    if step == "execve":
        raise StartError(f"cannot execute {argv[0]}: {os.strerror(err)}", 126)
    raise StartError(f"{step}: {os.strerror(err)}", 125)


def attach_and_wait(paths, started, stdout_fd, stderr_fd):
    """Copy the container's output to our stdout/stderr and its log (tee),
    forwarding SIGINT/SIGTERM/SIGHUP to it; return its exit status."""
    child = started.child
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {}

    def forward(sig, _frame):
        try:
            native.pidfd_send_signal(child.pidfd, sig) if child.pidfd >= 0 \
                else os.kill(child.pid, sig)
        except OSError:
            pass

    try:
        for sig in forwarded:
            old[sig] = signal.signal(sig, forward)
    except ValueError:  # not the main thread: no forwarding
        pass
    try:
        log_path = os.path.join(paths.container(started.id), "log")
        with open(log_path, "ab") as log:
            _pump({started.out_fd: (stdout_fd, b"stdout"),
                   started.err_fd: (stderr_fd, b"stderr")}, log)
        with trace.span("wait", pid=child.pid) as sp:
            code = _wait(child)
            sp.set(f"exit {code}")
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return code


def _pump(streams, log):
    """Until every stream reaches EOF: write each chunk through at once,
    and complete lines to the log as '<RFC 3339 time> <stream> <text>'."""
    partial = {fd: b"" for fd in streams}
    open_fds = list(streams)
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [])
        for fd in ready:
            chunk = os.read(fd, 65536)
            dest, name = streams[fd]
            if not chunk:
                open_fds.remove(fd)
                os.close(fd)
                if partial[fd]:
                    log.write(_log_line(name, partial[fd] + b"\n"))
                continue
            _write_all(dest, chunk)
            lines = (partial[fd] + chunk).split(b"\n")
            partial[fd] = lines.pop()
            stamp = _log_stamp()
            log.write(b"".join(b"%s %s %s\n" % (stamp, name, ln) for ln in lines))
        log.flush()


def _log_stamp():
    t = time.time()
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
            + ".%09dZ" % int((t % 1) * 1e9)).encode()


def _log_line(name, text):
    return b"%s %s %s" % (_log_stamp(), name, text)


def _write_all(fd, data):
    try:
        while data:
            data = data[os.write(fd, data):]
    except BrokenPipeError:
        pass  # our reader went away; the log still gets everything


def _wait(child):
    _, status = os.waitpid(child.pid, 0)
    if child.pidfd >= 0:
        os.close(child.pidfd)
        child.pidfd = -1
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def finish(paths, started, code):
    """Record how the container ended and release its kernel resources;
    with --rm, remove it entirely."""
    cid = started.id
    cg = cgroups.driver()
    record = started.record
    oom = cg.oom_killed(cid)
    with trace.span("cgroup remove", name=cid):
        cg.destroy(cid)
    record["State"].update(Status="exited", Running=False, Pid=0, ExitCode=code,
                           OOMKilled=oom, FinishedAt=_now())
    if record["HostConfig"].get("AutoRemove"):
        with trace.span("btrfs delete", target=os.path.join(paths.container(cid), "rootfs")):
            _remove_dir(paths.container(cid))
    else:
        save(paths, record)


def _kill_and_reap(child):
    try:
        os.kill(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(child.pid, 0)
    except ChildProcessError:
        pass
    if child.pidfd >= 0:
        os.close(child.pidfd)
        child.pidfd = -1


def _close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _flag_names(flags):
    names = {native.CLONE_NEWNS: "NEWNS", native.CLONE_NEWPID: "NEWPID",
             native.CLONE_NEWUTS: "NEWUTS", native.CLONE_NEWIPC: "NEWIPC",
             native.CLONE_NEWNET: "NEWNET", native.CLONE_NEWCGROUP: "NEWCGROUP"}
    return "|".join(n for bit, n in names.items() if flags & bit)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _new_record(cid, req, image_id, image, argv, hostname, config):
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
                   "User": req.user or config.get("User") or "",
                   "Image": req.image},
        "State": {"Status": "created", "Running": False, "Pid": 0, "ExitCode": 0,
                  "OOMKilled": False, "StartedAt": "", "FinishedAt": "", "Error": ""},
        "HostConfig": {"Memory": req.memory, "CpuShares": req.cpu_shares,
                       "NanoCpus": int((req.cpus or 0) * 1e9),
                       "PidsLimit": req.pids_limit or 0, "NetworkMode": req.network,
                       "AutoRemove": req.remove, "Privileged": req.privileged,
                       "Binds": req.volumes, "Tmpfs": req.tmpfs},
        "NetworkSettings": {},
    }


# --------------------------------------------------------- other commands

def remove(paths, ref, force=False):
    """Delete a stopped container: snapshot, cgroup and metadata."""
    cid = resolve(paths, ref)
    record = load(paths, cid)
    if is_running(record):
        if not force:
            raise BockerError(f"container '{ref}' is running: stop it first or use -f")
        os.kill(record["State"]["Pid"], signal.SIGKILL)
        _wait_gone(record["State"]["Pid"])
    cgroups.driver().destroy(cid)
    _remove_dir(paths.container(cid))
    return cid


def _wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)


def _remove_dir(cdir):
    """Remove a container directory: record first (so it is never listed
    half-removed), then the snapshot, then the rest."""
    try:
        os.unlink(os.path.join(cdir, "container.json"))
    except FileNotFoundError:
        pass
    store.delete(os.path.join(cdir, "rootfs"))
    try:
        entries = os.listdir(cdir)
    except FileNotFoundError:
        return
    for entry in entries:
        os.unlink(os.path.join(cdir, entry))
    os.rmdir(cdir)


def read_log(paths, ref):
    """[(stream, line_bytes)] of a container's log, in order."""
    cid = resolve(paths, ref)
    try:
        with open(os.path.join(paths.container(cid), "log"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.splitlines(keepends=True):
        parts = line.split(b" ", 2)
        if len(parts) == 3:
            out.append((parts[1].decode(), parts[2]))
    return out


def commit(paths, ref, image_ref=None, name=None):
    """Make an image of a container's filesystem.

    With image_ref (p8952/bocker's form) the image's content is replaced
    and its ID kept: returns (removed_id, created_id) with both the same.
    Otherwise a new image is created: returns (None, new_id).
    """
    cid = resolve(paths, ref)
    rootfs = os.path.join(paths.container(cid), "rootfs")
    source = f"container {cid}"
    if image_ref and not name:
        image_id = images.resolve(paths, image_ref)
        images.replace_rootfs(paths, image_id, rootfs, source)
        return image_id, image_id
    try:
        config = images.load(paths, load(paths, cid)["Image"]).get("config", {})
    except BockerError:  # the image was removed since: start from nothing
        config = {}
    new_id = images.create(paths, source, None, name=name or image_ref,
                           config=config, snapshot_of=rootfs)
    return None, new_id
