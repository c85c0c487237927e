"""`bocker-oci create`: a bundle becomes a container waiting at its gate.

The steps, in order, each registering its undo on one ExitStack so a
failure at any of them leaves nothing (state directory, cgroup, FIFO,
process): claim the state directory, record "creating", make the cgroup,
the gate FIFO, the console socket connection and the namespace handles,
clone the init as OUR child (native.spawn with oci=...; no monitor: the
caller's subreaper adopts it when we exit), hand over its id maps, read
its reports to EOF (it reports "wait for parent" ok once every step
before the gate succeeded), set oom_score_adj, run the create-time hooks,
record "created", write the pid file.
"""
import contextlib
import errno
import os
import shutil
import signal

from bocker.errors import BockerError, InvalidArgument
from bocker.kernel import native
from bocker.oci import caps, console, hooks, keyring, log, namespaces, state
from bocker.oci.state import FIFO
from bocker.runtime import reports
from bocker.runtime.stdio import Fds, close_quietly

READY_STEP = "wait for parent"


class CreateFailed(BockerError):
    """create could not make the container; it has undone what it made."""


class Created:
    """A created container: its ID, init PID and (ours, as its parent)
    pidfd; console: our end of the socket its pty master comes over, or -1."""

    def __init__(self, cid, pid, pidfd, console=-1):
        self.cid, self.pid, self.pidfd, self.console = cid, pid, pidfd, console


def create(root, cid, bundle_dir, pid_file=None, console_socket=None, no_pivot=False,
           preserve_fds=0, relay_console=False, new_keyring=True):
    """Create container cid from the bundle; returns Created once its init
    waits at the gate.  Any failure undoes everything and raises one line.
    relay_console: with process.terminal and no console_socket, Created's
    console is our end of the socket the master comes over (`run`)."""
    from bocker.oci import config as oci_config

    state.check_id(cid)
    check_preserved_fds(preserve_fds)
    bundle = oci_config.load(os.path.abspath(bundle_dir or "."))
    for warning in bundle.warnings:
        log.warning(warning)
    proc = bundle.process
    if proc is None:
        raise InvalidArgument("config.json: process: required to create a container")
    for warning in getattr(proc, "warnings", None) or []:
        log.warning(warning)
    if proc.terminal and not console_socket and not relay_console:
        raise InvalidArgument("process.terminal is true: --console-socket is required")
    root.ensure()
    with contextlib.ExitStack() as undo:
        fds = Fds()
        undo.callback(fds.close_all)
        cdir = _claim_dir(root, cid, undo)
        record = _record_creating(cid, cdir, bundle)
        cg = _make_cgroup(bundle, cid, undo)
        record["cgroup_made"] = getattr(cg, "made", None)
        state.save(cdir, record)
        child_fds = _open_child_fds(bundle, cdir, cg, console_socket, fds)
        options = _spawn_options(bundle, cdir, cg, child_fds, no_pivot, preserve_fds)
        if new_keyring:
            keyring.join_new_session_keyring()
        child = _clone(bundle, options, undo)
        record["pid"] = child.pid  # for a delete after we die here (its cgroup has it too)
        state.save(cdir, record)
        fds.close(*child_fds["close_after_clone"])
        _hand_over_ids(bundle, child.pid, child_fds, fds)
        _wait_ready(cid, child, bundle, options)
        _set_oom_score(child.pid, proc)
        record.update(pid=child.pid, pid_start=_start_time(cid, child.pid))
        state.save(cdir, record)
        _create_hooks(record)
        record["status"] = "created"
        state.save(cdir, record)
        if pid_file:
            write_pid_file(pid_file, child.pid)
        undo.pop_all()
    ours = fds.release(child_fds["console_ours"])
    fds.close_all()
    return Created(cid, child.pid, child.pidfd, ours)


def check_preserved_fds(n):
    """--preserve-fds N: fds 3..3+N-1 must be the caller's own open fds, so
    none of ours ever takes such a number and leaks into the container."""
    if not isinstance(n, int) or n < 0 or n > 1 << 16:
        raise InvalidArgument(f"invalid --preserve-fds {n}")
    for fd in range(3, 3 + n):
        try:
            os.fstat(fd)
        except OSError:
            raise InvalidArgument(f"--preserve-fds {n}: fd {fd} is not open") from None


def _claim_dir(root, cid, undo):
    """mkdir <root>/<id>: the atomic claim on the ID."""
    cdir = root.dir(cid)
    try:
        os.mkdir(cdir, 0o700)
    except FileExistsError:
        raise CreateFailed(f"container with id {cid} already exists") from None
    undo.callback(shutil.rmtree, cdir, True)
    return cdir


def _record_creating(cid, cdir, bundle):
    me = os.getpid()
    return {
        "id": cid, "status": "creating", "creator": [me, state.proc_stat(me)[1]],
        "pid": 0, "pid_start": None, "bundle": bundle.path, "rootfs": bundle.rootfs,
        "created": state.now_iso(), "owner": "", "annotations": dict(bundle.annotations or {}),
        "cgroups_path": bundle.cgroups_path, "hooks": hooks.to_record(bundle.hooks),
        "config": bundle.config,
        "userns": "user" in (bundle.namespaces or {}),
    }


def _make_cgroup(bundle, cid, undo):
    from bocker.oci.cgroup import OciCgroup

    cg = OciCgroup(bundle.cgroups_path, cid)
    undo.callback(cg.destroy)
    for warning in cg.create(bundle.resources or {}) or []:
        log.warning(warning)
    return cg


def _start_time(cid, pid):
    st = state.proc_stat(pid)
    if not st or st[0] in ("Z", "X"):
        raise CreateFailed(f"create {cid}: the container's init ended before it was ready")
    return st[1]


def _open_child_fds(bundle, cdir, cg, console_socket, fds):
    """The fds the init gets: cgroup handles, the gate FIFO (O_RDWR, so it
    never blocks opening it and a `start` finds a reader), the console
    socket, the user namespace socket, the namespaces it joins."""
    out = {"close_after_clone": []}
    procs, dir_fd = cg.handles()
    fds.add(list(procs), dir_fd)
    out["procs"], out["cgroup_dir"] = list(procs), dir_fd
    out["close_after_clone"] += [*procs, dir_fd]
    fifo = os.path.join(cdir, FIFO)
    os.mkfifo(fifo, 0o600)
    out["go"] = fds.add(os.open(fifo, os.O_RDWR | os.O_CLOEXEC))[0]
    out["close_after_clone"].append(out["go"])
    out["console"] = out["console_ours"] = -1
    if console_socket:
        out["console"] = fds.add(console.connect(console_socket))[0]
        out["close_after_clone"].append(out["console"])
    elif bundle.process.terminal:  # a foreground run relays it (console.py)
        out["console_ours"], out["console"] = fds.add(*console.local_pair())
        out["close_after_clone"].append(out["console"])
    out["ns_parent"] = out["ns_child"] = -1
    if "user" in (bundle.namespaces or {}) and bundle.namespaces["user"] is None:
        out["ns_parent"], out["ns_child"] = fds.add(*native.unix_pair())
        out["close_after_clone"].append(out["ns_child"])
    out["join"], out["pidns"] = namespaces.open_joined(bundle.namespaces or {}, fds)
    out["close_after_clone"] += [fd for fd, _ in out["join"]] + [out["pidns"]]
    return out


def _mounts(bundle, cg):
    """config.json's mounts as the shim's OciMounts, in order; a type
    "cgroup" mount is the cgroup module's view of this container's group."""
    out = []
    for m in bundle.mounts:
        if m.kind == "cgroup":
            out.extend(cg.mounts(m.target, m.flags))
            continue
        if m.kind == "bind":
            source = m.source if os.path.isabs(m.source) else os.path.join(bundle.path,
                                                                           m.source)
            out.append(native.OciMount(source=source, target=m.target, fstype=None,
                                       data=m.data, flags=m.flags, propagation=m.propagation,
                                       recursive=m.recursive,
                                       is_file=not os.path.isdir(source)))
        else:
            out.append(native.OciMount(source=m.source, target=m.target, fstype=m.fstype,
                                       data=m.data, flags=m.flags, propagation=m.propagation,
                                       recursive=False, is_file=False))
    return out


def _devices(bundle):
    """linux.devices (and the spec's default nodes) as the shim's OciDevices."""
    return [native.OciDevice(path=d.path, kind=d.kind, major=d.major, minor=d.minor,
                             mode=d.mode, uid=d.uid, gid=d.gid) for d in bundle.devices or []]


def _spawn_options(bundle, cdir, cg, child, no_pivot, preserve_fds):
    from bocker.oci import config as oci_config

    proc = bundle.process
    hostname = bundle.hostname
    if hostname and (bundle.namespaces or {}).get("uts", "") is not None:
        log.warning("hostname is not set: the config has no new uts namespace")
        hostname = None
    seccomp_filter = None
    if bundle.seccomp:
        seccomp_filter = oci_config.compile_seccomp(bundle.seccomp, proc.caps["bounding"])
    oci = native.Oci(
        mounts=_mounts(bundle, cg), devices=_devices(bundle), default_links=True,
        masked=list(bundle.masked or []), readonly=list(bundle.readonly or []),
        caps=caps.raisable(proc.caps), gids=list(proc.gids or []), umask=proc.umask,
        no_new_privs=bool(proc.no_new_privs), rootfs_propagation=bundle.rootfs_propagation or 0,
        domainname=bundle.domainname, join_ns=child["join"], pidns_fd=child["pidns"],
        ready=True, preserve_fds=preserve_fds, no_pivot=bool(no_pivot))
    terminal = bool(proc.terminal)
    return dict(
        cwd=proc.cwd or "/", hostname=hostname, uid=proc.uid, gid=proc.gid,
        clone_flags=namespaces.clone_flags(bundle.namespaces), cgroup_fds=child["procs"],
        cgroup_dir_fd=child["cgroup_dir"], stdio=(-1, -1, -1) if terminal else (0, 1, 2),
        go_fd=child["go"], console_sock=child["console"],
        console_size=tuple(proc.console_size or (0, 0)),
        seccomp_filter=seccomp_filter, sysctls=list(bundle.sysctls or []),
        rlimits=list(proc.rlimits or []), readonly_rootfs=bool(bundle.readonly_root),
        userns_sock=child["ns_child"], oci=oci)


def _clone(bundle, options, undo):
    proc = bundle.process
    try:
        child = native.spawn(bundle.rootfs, proc.args, proc.env, **options)
    except OSError as e:
        raise CreateFailed(f"clone {proc.args[0] if proc.args else ''}: "
                           f"{e.strerror or e}") from None
    undo.callback(kill_and_reap, child)
    return child


def kill_and_reap(child):
    """The undo of the clone: SIGKILL our child and reap it."""
    with contextlib.suppress(OSError):
        native.pidfd_send_signal(child.pidfd, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(child.pid, 0)
    close_quietly(child.pidfd)
    child.pidfd = -1


def _hand_over_ids(bundle, pid, child, fds):
    """A new user namespace: write the init's uid_map and gid_map (we are
    root outside), then one byte on the socket it waits on."""
    if child["ns_parent"] < 0:
        return
    for which, maps in (("uid_map", bundle.uid_mappings), ("gid_map", bundle.gid_mappings)):
        text = "".join(f"{c} {h} {n}\n" for c, h, n in maps or [])
        if not text:
            continue
        path = f"/proc/{pid}/{which}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise CreateFailed(f"write {path}: {e.strerror}") from None
    sock = fds.release(child["ns_parent"])
    try:
        os.write(sock, b"m")
    except OSError:
        pass  # the init failed a step already: its report says which
    finally:
        os.close(sock)


def _wait_ready(cid, child, bundle, options):
    """The init's reports to EOF: a failed step is one line naming it and
    its object; an init that ended without saying it is ready too."""
    got = native.read_reports(child.status_fd)
    failure = failure_text(got, bundle.process.args, options)
    if failure:
        raise CreateFailed(f"create {cid}: {failure}")
    if not any(r[0] == READY_STEP and not r[1] for r in got):
        raise CreateFailed(f"create {cid}: the container's init ended before it was ready")


def failure_text(got, argv, options):
    """The one line a failed step's report means, or None.  execve's are
    worded as runc's (podman maps "executable file not found" to 127 and
    "permission denied" to 126)."""
    failed = [r for r in got if r[1]]
    if not failed:
        return None
    step, err = failed[-1][0], failed[-1][1]
    if step == "execve":
        why = ("executable file not found in $PATH" if err == errno.ENOENT
               else os.strerror(err).lower())
        return f'exec: "{argv[0]}": {why}'
    return str(reports.decode(got, argv, options))


def _set_oom_score(pid, proc):
    value = getattr(proc, "oom_score_adj", None)
    if value is None:
        return
    path = f"/proc/{pid}/oom_score_adj"
    try:
        with open(path, "w") as f:
            f.write(str(int(value)))
    except OSError as e:
        raise CreateFailed(f"write {path}: {e.strerror}") from None


def _create_hooks(record):
    """createRuntime, createContainer: the init is ready and its
    namespaces exist; any failure fails the create.  They see status
    "created", as crun gives: the container is whole, only the hooks'
    verdict is pending.  (prestart runs at start: control.start.)"""
    st = state.spec_state(record, "created")
    st["pid"] = record["pid"]
    for kind in ("createRuntime", "createContainer"):
        hooks.run(kind, record["hooks"], st)


def write_pid_file(path, pid):
    """The pid file, tmp + rename, so a reader never sees half a number."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CreateFailed(f"write pid file {path}: {e.strerror}") from None
