"""The verbs on an existing container: start, kill, delete, pause,
resume, update, and the reads (state, ps, list).  Each takes the
container's flock, computes its status and asks the state machine
(state.check_transition) before it acts."""
import contextlib
import os
import select
import shutil
import signal
import time

from bocker.errors import BockerError
from bocker.kernel import native
from bocker.oci import hooks, log, state
from bocker.oci.state import FIFO

KILL_WAIT = 10.0   # seconds a delete --force waits for the processes to go
EXEC_WAIT = 10.0   # seconds start waits for the init's execve before poststart
SETTLE_WAIT = 0.1  # seconds it then gives a running process before poststart hooks


def cgroup_of(record):
    """The container's OciCgroup, from what create stored."""
    from bocker.oci.cgroup import OciCgroup

    return OciCgroup(record.get("cgroups_path"), record["id"], made=record.get("cgroup_made"))


def current(root, record, cg=None):
    """The record's status now (with its cgroup's freezer)."""
    cg = cg or cgroup_of(record)

    def frozen():
        """The freezer's state; an unreadable one is not paused."""
        try:
            return cg.exists() and cg.frozen()
        except OSError:
            return False

    return state.status(record, root.dir(record["id"]), frozen)


def init_pidfd(record):
    """A pidfd for the container's init, checked against its start time
    so a recycled PID is never signalled; None if it is gone."""
    try:
        pidfd = native.pidfd_open(record["pid"])
    except OSError:
        return None
    if not state.alive(record["pid"], record.get("pid_start")):
        os.close(pidfd)
        return None
    return pidfd


# ------------------------------------------------------------- verbs

def start(root, cid):
    """Open the gate of a created container: prestart and startContainer
    hooks (a failure stops and deletes the container), the byte on
    exec.fifo, poststart hooks (their failure is a warning)."""
    with state.locked(root, cid) as record:
        status = current(root, record)
        state.check_transition("start", cid, status)
        try:
            hooks.run("prestart", record["hooks"], state.spec_state(record, "created"))
            if record["hooks"].get("startContainer"):
                hooks.run("startContainer", record["hooks"],
                          state.spec_state(record, "created"), _inside(record))
        except hooks.HookFailed:
            _delete_locked(root, cid, root.dir(cid), record, force=True)
            raise
        fifo = os.path.join(root.dir(cid), FIFO)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:  # ENXIO: nobody reads it, the init is gone
            raise state.WrongState(f"cannot start container {cid}: its init is not waiting "
                                   f"({e.strerror})") from None
        try:
            os.unlink(fifo)    # gone first: from here `state` says running
            os.write(fd, b"0")
            _wait_for_exec(fd)
        finally:
            os.close(fd)
        if record["hooks"].get("poststart"):
            _let_it_settle(record["pid"])
        hooks.run_warning("poststart", record["hooks"], state.spec_state(record, "running"),
                          log.warning)


def _inside(record):
    """The runner of hooks inside this container, as its process."""
    from bocker.oci import config as oci_config
    from bocker.oci import inside

    proc = oci_config.parse_process((record.get("config") or {}).get("process") or {})
    return inside.runner(record, cgroup_of(record), proc)


def _wait_for_exec(fifo_fd):
    """Until the init has exec'd (or died): its end of the gate is
    CLOEXEC, so our write end reports POLLERR once no reader is left.
    poststart hooks run after the container's process is executed."""
    poller = select.poll()
    poller.register(fifo_fd, select.POLLERR)
    deadline = time.monotonic() + EXEC_WAIT
    while time.monotonic() < deadline:
        if poller.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            return


def _let_it_settle(pid):
    """Before poststart hooks: give the just-exec'd process its first
    steps, until it sleeps, stops or ends (at most SETTLE_WAIT), so a hook
    sees what it did first (runtime-tools' poststart program checks that
    order).  Only a start with poststart hooks pays for it."""
    deadline = time.monotonic() + SETTLE_WAIT
    while time.monotonic() < deadline:
        st = state.proc_stat(pid)
        if st is None or st[0] != "R":
            return
        time.sleep(0.001)


def kill(root, cid, sig=signal.SIGTERM, all_processes=False):
    """Signal the init (or, with --all, every process of its cgroup)."""
    with state.locked(root, cid) as record:
        cg = cgroup_of(record)
        status = current(root, record, cg)
        if all_processes and status == "stopped":
            # what outlived the init without a PID namespace of its own
            # (containerd's shim kills --all after the init's exit)
            if cg.exists():
                cg.kill_all(sig)
            return
        state.check_transition("kill", cid, status)
        if all_processes:
            cg.kill_all(sig)
            return
        pidfd = init_pidfd(record)
        if pidfd is None:
            raise state.WrongState(f"container {cid} is stopped: container not running")
        try:
            native.pidfd_send_signal(pidfd, sig)
        finally:
            os.close(pidfd)


def delete(root, cid, force=False):
    """Remove a stopped container (with --force any: killed first):
    poststop hooks, cgroup, state directory with its FIFO."""
    cdir = root.dir(cid)
    try:
        with state.locked(root, cid) as record:
            _delete_locked(root, cid, cdir, record, force)
    except state.ContainerNotFound:
        if os.path.isdir(cdir):  # a create cut short before its state.json
            shutil.rmtree(cdir, ignore_errors=True)
        elif not force:
            raise
    except state.CorruptState:
        if not force:
            raise
        shutil.rmtree(cdir, ignore_errors=True)  # what can be known of it


def _delete_locked(root, cid, cdir, record, force):
    cg = cgroup_of(record)
    status = current(root, record, cg)
    state.check_transition("delete", cid, status, force)
    if status != "stopped":
        _kill_init(record, cg, status)
    _end_the_rest(cg)
    if record.get("status") != "creating":
        hooks.run_warning("poststop", record["hooks"], state.spec_state(record, "stopped"),
                          log.warning)
    cg.destroy()
    shutil.rmtree(cdir)


def _kill_init(record, cg, status):
    pidfd = init_pidfd(record)
    if pidfd is None:
        return
    try:
        with contextlib.suppress(OSError):
            native.pidfd_send_signal(pidfd, signal.SIGKILL)
        if status == "paused":  # a frozen task takes its SIGKILL once thawed
            with contextlib.suppress(OSError):
                cg.thaw()
        select.select([pidfd], [], [], KILL_WAIT)
    finally:
        os.close(pidfd)


def _end_the_rest(cg):
    """What is left in the cgroup (exec'd processes, or all of them
    without a PID namespace) is killed and waited for, so the group can
    go."""
    try:
        if not cg.exists() or not cg.pids():
            return
        with contextlib.suppress(OSError):
            cg.thaw()
        cg.kill_all(signal.SIGKILL)
    except OSError:
        return
    deadline = time.monotonic() + KILL_WAIT
    while time.monotonic() < deadline:
        try:
            if not cg.pids():
                return
        except OSError:
            return
        time.sleep(0.01)


def pause(root, cid):
    """Freeze a running container's cgroup."""
    with state.locked(root, cid) as record:
        cg = cgroup_of(record)
        state.check_transition("pause", cid, current(root, record, cg))
        cg.freeze()


def resume(root, cid):
    """Thaw a paused container's cgroup."""
    with state.locked(root, cid) as record:
        cg = cgroup_of(record)
        state.check_transition("resume", cid, current(root, record, cg))
        cg.thaw()


def update(root, cid, resources):
    """Apply new linux.resources to the container's cgroup; warnings go
    to the log and stderr."""
    with state.locked(root, cid) as record:
        cg = cgroup_of(record)
        state.check_transition("update", cid, current(root, record, cg))
        for warning in cg.update(resources) or []:
            log.warning(warning)


# ------------------------------------------------------------- reads

def spec_state(root, cid):
    """The runtime spec's state of cid (`state`)."""
    record = state.load(root, cid)
    return state.spec_state(record, current(root, record))


def pids(root, cid):
    """The PIDs in the container's cgroup (`ps`)."""
    record = state.load(root, cid)
    cg = cgroup_of(record)
    if not cg.exists():
        return []
    return sorted(cg.pids())


def listing(root):
    """Every container's spec state, by ID (a broken one is skipped and
    said so)."""
    out = []
    for cid in root.ids():
        try:
            out.append(spec_state(root, cid))
        except state.ContainerNotFound:
            continue  # deleted meanwhile
        except BockerError as e:
            log.warning(str(e))
    return out
