"""`bocker exec`: a command joining a running container (its namespaces
through its pidfd, its cgroup, its capabilities and seccomp filter), with
the same stdio plumbing and report decoding as a start."""
import contextlib
import os

from bocker import faults, trace
from bocker.errors import StartError
from bocker.kernel import cgroups, native
from bocker.runtime import recordshape, reports, spec
from bocker.runtime.signals import pidfd_of, running
from bocker.runtime.start import confinement_options
from bocker.runtime.stdio import Fds, Stdio, cgroup_handles, close_quietly


def exec_in(paths, ref, argv, env=(), workdir=None, user=None, tty=False,
            interactive=False, stdout_fd=1, stderr_fd=2, detach=False, privileged=False,
            detach_keys=None):
    """Run argv inside a running container (its namespaces via its pidfd,
    and its cgroup); return the command's exit status.  detach (exec -d):
    0 once it runs, its stdio /dev/null; it runs on as a child of the
    container's PID 1, which reaps it.  privileged: every capability and
    no seccomp filter for this command (Docker's exec --privileged; the
    container's mounts stay as they are).  detach_keys (exec
    --detach-keys; with -it ctrl-p,ctrl-q by default, as Docker's): typed
    on our stdin, they end this client with 0 and the command runs on,
    its output read and dropped (attach.drain_detached)."""
    from bocker.runtime import attach, checks

    checks.check_exec(argv, env, workdir, user)
    scanner = _detach_scanner(detach_keys, tty, interactive)
    faults.point("exec_in.find_running")
    record = running(paths, ref)
    if record["State"].get("Paused"):  # it would join the frozen group and hang there
        from bocker.errors import BockerError

        raise BockerError(f"Container {ref} is paused, unpause the container before exec")
    cid, config = record["Id"], record["Config"]
    req = recordshape.request(record)
    if privileged:
        req.privileged = True
    conf = confinement_options(req, paths)  # the container's own: its caps and seccomp filter
    pidfd = pidfd_of(record)
    rootfs = os.path.join(paths.container(cid), "rootfs")
    uid, gid, home = spec.resolve_user(rootfs, user or config.get("User"))
    groups = spec.resolve_groups(rootfs, req.group_add) if req.group_add else []
    full_env = spec.build_env(config["Env"], env, config["Hostname"], home)
    if tty:
        full_env.append("TERM=" + os.environ.get("TERM", "xterm"))
    cg = cgroups.driver()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(os.close, pidfd)
        fds = Fds()
        cleanup.callback(fds.close_all)
        faults.point("exec_in.open_fds")
        procs, cgroup_dir_fd = fds.add(*cgroup_handles(cg, cid))
        io = None if detach else Stdio(tty, interactive, fds)
        faults.point("exec_in.spawn")
        adj = contextlib.nullcontext()
        if req.oom_score_adj is not None:  # the container's, inherited through our clone
            from bocker.runtime import resources

            adj = resources.own_oom_score_adj(req.oom_score_adj)
        with adj, trace.span("clone", join=f"pidfd of pid {record['State']['Pid']}",
                        argv=argv) as sp:
            child = native.spawn("/", argv, full_env,
                                 cwd=workdir or config["WorkingDir"] or "/",
                                 uid=uid, gid=gid, join_pidfd=pidfd, cgroup_fds=procs,
                                 cgroup_dir_fd=cgroup_dir_fd,
                                 stdio=io.child_stdio() if io else (-1, -1, -1),
                                 privileged=req.privileged, groups=groups,
                                 clone_flags=native.CLONE_NEWUSER if record["IdMaps"] else 0,
                                 trace=trace.enabled(),
                                 console_sock=io.console_child if io else -1,
                                 **{k: conf[k] for k in ("cap_keep", "seccomp_filter")})
            sp.set(f"pid {child.pid}")
        cleanup.callback(close_quietly, child.pidfd)
        fds.close(cgroup_dir_fd, *procs, *(io.child_ends() if io else ()))
        faults.point("exec_in.check_reports")
        try:
            reports.check(child.status_fd, child.pid, argv)
        except StartError:
            os.waitpid(child.pid, 0)
            raise
        if detach:  # it runs on; our exit hands it to the container's PID 1
            return 0
        faults.point("exec_in.pump")
        log = attach.LogWriter(os.devnull)  # exec output is not the container's log
        try:
            if tty:
                detached = attach.pump_tty(io.receive_master(), log, 0, stdout_fd,
                                           scanner=scanner)
            else:
                detached = attach.pump_pipes(
                    {fds.release(io.out_r): (stdout_fd, b"stdout"),
                     fds.release(io.err_r): (stderr_fd, b"stderr")}, log,
                    stdin=(0, fds.release(io.in_w)) if io.in_w >= 0 else None,
                    scanner=scanner)
        finally:
            log.close()
        if detached:  # it runs on; our exit hands it to the container's PID 1
            return 0
        faults.point("exec_in.wait")
        _, status = os.waitpid(child.pid, 0)
    return native.exit_code(status)


def _detach_scanner(keys, tty, interactive):
    """The DetachScanner of exec's input: --detach-keys (checked here,
    before anything runs), else Docker's ctrl-p,ctrl-q for -it; None when
    there is no input to watch (Docker: detaching needs stdin)."""
    from bocker.runtime import protocol

    if not interactive or not (keys or tty):
        if keys:
            protocol.parse_detach_keys(keys)
        return None
    return protocol.DetachScanner(protocol.parse_detach_keys(
        keys or protocol.DEFAULT_DETACH_KEYS))
