"""`bocker-oci exec`: a process joining a created or running container:
its namespaces through the init's pidfd, its cgroup, the container's
seccomp filter, and the process from --process JSON or from the
config's process with the command line's args, --cwd, --env, --user,
--cap, --tty.  Without --detach we stay its parent, wait, and exit with
its status (128+N for signal N); with it we exit once it has exec'd."""
import copy
import os
import signal

from bocker.errors import InvalidArgument
from bocker.kernel import native
from bocker.oci import caps, console, control, launch, log, state
from bocker.runtime.stdio import Fds, close_quietly

MAX_PROCESS_JSON = 8 << 20
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


class ExecRequest:
    """What the command line asked for (process_file, or args and the
    overrides)."""

    def __init__(self, args=(), process_file=None, cwd=None, env=(), user=None,
                 additional_gids=(), caps=(), tty=False, no_new_privs=False):
        self.args, self.process_file, self.cwd = list(args), process_file, cwd
        self.env, self.user, self.additional_gids = list(env), user, list(additional_gids)
        self.caps, self.tty, self.no_new_privs = list(caps), tty, no_new_privs


def read_process_file(path):
    """--process FILE ('-' is stdin): a bounded JSON object."""
    from bocker.oci import jsonfields

    return jsonfields.read_object_file(path, "--process", MAX_PROCESS_JSON)


def process_object(record, req):
    """The OCI process object to run: the file's, or the config's own
    process with the command line's changes."""
    if req.process_file:
        return read_process_file(req.process_file)
    if not req.args:
        raise InvalidArgument("exec: a command is required (or --process FILE)")
    base = copy.deepcopy((record.get("config") or {}).get("process") or {})
    base["args"] = req.args
    base["terminal"] = bool(req.tty)
    base.pop("consoleSize", None)
    if req.cwd:
        base["cwd"] = req.cwd
    if req.env:
        base["env"] = list(base.get("env") or []) + req.env
    if req.user is not None:
        base["user"] = dict(base.get("user") or {}, **_parse_user(req.user))
    if req.additional_gids:
        user = base.setdefault("user", {"uid": 0, "gid": 0})
        user["additionalGids"] = [_int("--additional-gids", g) for g in req.additional_gids]
    if req.caps:
        caps = base.setdefault("capabilities", {})
        for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            have = list(caps.get(kind) or [])
            caps[kind] = have + [c for c in req.caps if c not in have]
    if req.no_new_privs:
        base["noNewPrivileges"] = True
    return base


def _int(what, text):
    if not (str(text).isascii() and str(text).isdigit()) or int(text) >= 1 << 32:
        raise InvalidArgument(f"invalid {what} {text!r}: a number")
    return int(text)


def _parse_user(text):
    uid, _, gid = str(text).partition(":")
    out = {"uid": _int("--user", uid)}
    out["gid"] = _int("--user", gid) if gid else 0
    return out


def exec_in(root, cid, req, detach=False, pid_file=None, console_socket=None,
            preserve_fds=0):
    """Run the process in container cid; returns its exit code (0 with
    --detach, once it has exec'd)."""
    from bocker.oci import config as oci_config

    launch.check_preserved_fds(preserve_fds)
    with state.locked(root, cid) as record:
        cg = control.cgroup_of(record)
        state.check_transition("exec", cid, control.current(root, record, cg))
        where = f"--process {req.process_file}" if req.process_file else "exec"
        proc = oci_config.parse_process(process_object(record, req), where)
        for warning in proc.warnings or []:
            log.warning(warning)
        if proc.terminal and not console_socket and detach:
            raise InvalidArgument("exec --tty --detach needs --console-socket")
        seccomp = ((record.get("config") or {}).get("linux") or {}).get("seccomp")
        seccomp_filter = (oci_config.compile_seccomp(seccomp, proc.caps["bounding"])
                          if seccomp else None)
        pidfd = control.init_pidfd(record)
        if pidfd is None:
            raise state.WrongState(f"container {cid} is stopped: container not running")
        fds = Fds()
        try:
            fds.add(pidfd)
            procs, dir_fd = cg.handles()
            fds.add(list(procs), dir_fd)
            theirs = ours = -1
            if proc.terminal and console_socket:
                theirs = fds.add(console.connect(console_socket))[0]
            elif proc.terminal:   # we relay it ourselves
                ours, theirs = fds.add(*console.local_pair())
            oci = native.Oci(caps=caps.raisable(proc.caps), gids=list(proc.gids or []),
                             umask=proc.umask, no_new_privs=bool(proc.no_new_privs),
                             ready=False, preserve_fds=preserve_fds)
            options = dict(cwd=proc.cwd or "/", uid=proc.uid, gid=proc.gid, join_pidfd=pidfd,
                           cgroup_fds=list(procs), cgroup_dir_fd=dir_fd,
                           clone_flags=native.CLONE_NEWUSER if record.get("userns") else 0,
                           stdio=(-1, -1, -1) if proc.terminal else (0, 1, 2),
                           console_sock=theirs, seccomp_filter=seccomp_filter,
                           rlimits=list(proc.rlimits or []), oci=oci)
            try:
                child = native.spawn("/", proc.args, proc.env, **options)
            except OSError as e:
                raise launch.CreateFailed(f"exec {cid}: clone: {e.strerror or e}") from None
            ours = fds.release(ours)
        finally:
            fds.close_all()
    try:
        failure = launch.failure_text(native.read_reports(child.status_fd), proc.args, options)
        if failure:
            os.waitpid(child.pid, 0)
            raise launch.CreateFailed(f"exec {cid}: {failure}")
        if pid_file:
            launch.write_pid_file(pid_file, child.pid)
        if detach:
            return 0
        if ours >= 0:
            fd, ours = ours, -1   # receive_master closes it
            console.relay(console.receive_master(fd))
        return wait_forwarding(child.pid, child.pidfd)
    finally:
        close_quietly(child.pidfd, ours)


def wait_forwarding(pid, pidfd):
    """Wait for our child pid, passing on the signals we get to it (its
    pidfd); returns its exit code, 128+N for signal N."""
    def forward(sig, _frame):
        """Pass sig on to the process (gone already: nothing to do)."""
        try:
            native.pidfd_send_signal(pidfd, sig)
        except OSError:
            pass

    old = {}
    for sig in FORWARDED:
        try:
            old[sig] = signal.signal(sig, forward)
        except (ValueError, OSError):
            pass
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
