"""startContainer hooks, run where the spec says: in the container's
namespaces, with the path resolved inside it.  runc runs them from the
container's init just before its execve; ours waits at the gate in C, so
`start` runs each as a process joining the init's namespaces (through its
pidfd) and cgroup, with the container process's ids and capability sets:
what an `exec` gets, without seccomp (the hook is the config author's,
not the container's)."""
import os
import select
import signal
import tempfile

from bocker.kernel import native
from bocker.oci import caps, launch
from bocker.oci.hooks import HookFailed
from bocker.runtime.stdio import Fds, close_quietly

_OUTPUT_SHOWN = 400


def runner(record, cg, proc):
    """A run_one(kind, index, hook, payload) for hooks.run that runs the
    hook inside the container of record (its cgroup cg, its Process proc)."""
    def run_one(kind, index, hook, payload):
        """Run one hook inside the container; HookFailed if it fails."""
        _run_inside(record, cg, proc, kind, index, hook, payload)
    return run_one


def _run_inside(record, cg, proc, kind, index, hook, payload):
    from bocker.oci import control

    name = f"{kind} hook {index} ({hook['path']})"
    # the shim execs argv[0] itself: the hook's path, then its args after args[0]
    argv = [hook["path"], *(list(hook.get("args") or [])[1:])]
    pidfd = control.init_pidfd(record)
    if pidfd is None:
        raise HookFailed(f"{name}: the container's init is gone")
    fds = Fds()
    fds.add(pidfd)
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as out:
        stdin.write(payload)
        stdin.seek(0)
        try:
            procs, dir_fd = cg.handles()
            fds.add(list(procs), dir_fd)
            oci = native.Oci(caps=caps.raisable(proc.caps), gids=list(proc.gids or []),
                             ready=False)
            options = dict(cwd="/", uid=proc.uid, gid=proc.gid, join_pidfd=pidfd,
                           cgroup_fds=list(procs), cgroup_dir_fd=dir_fd,
                           clone_flags=native.CLONE_NEWUSER if record.get("userns") else 0,
                           stdio=(stdin.fileno(), out.fileno(), out.fileno()), oci=oci)
            try:
                child = native.spawn("/", argv, list(hook.get("env") or []), **options)
            except OSError as e:
                raise HookFailed(f"{name}: clone: {e.strerror or e}") from None
        finally:
            fds.close_all()
        try:
            failure = launch.failure_text(native.read_reports(child.status_fd), argv, options)
            if failure:
                os.waitpid(child.pid, 0)
                raise HookFailed(f"{name}: {failure}")
            status = _wait(child, hook.get("timeout"), name)
        finally:
            close_quietly(child.pidfd)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            out.seek(0)
            text = " ".join(out.read(_OUTPUT_SHOWN).decode(errors="replace").split())
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            raise HookFailed(f"{name}: {how}{': ' + text if text else ''}")


def _wait(child, timeout, name):
    """The hook's wait status; past its timeout it is killed: HookFailed."""
    if timeout and not select.select([child.pidfd], [], [], timeout)[0]:
        try:
            native.pidfd_send_signal(child.pidfd, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(child.pid, 0)
        raise HookFailed(f"{name}: timed out after {timeout}s")
    return os.waitpid(child.pid, 0)[1]
