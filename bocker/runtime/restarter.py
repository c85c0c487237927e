"""What restarts containers: the restart policy applied when a container
exits, at boot, and `bocker restart`.

After an exit, finish() calls after_exit() under the container's lock.  If
the policy wants a restart (restartpolicy.after_exit), the wait must not
block finish's caller (an attached `bocker run --restart always` returns
its exit code, as Docker's does): a small detached process,

    python -m bocker.runtime.restarter ROOT CONTAINER_ID DELAY_MS

(started through sh's `&`, so that it is nobody's child) sleeps the backoff, then, under the lock, starts the container again
(detached, as `bocker start` does) if its record still says it is waiting
for exactly this process.  Meanwhile the record says Status "restarting",
Restarting true, and names the restarter as its RunnerPid: a dead
restarter is a dead keeper (records.keeper_gone), and a `stop`, `kill`,
`rm -f` or `start` ends it first (cancel()).

Docker keeps Running true while a container restarts; bocker keeps it
false, since nothing runs.
"""
import os
import sys
import time

_ENTRY = "bocker.runtime.restarter"  # the restarter's argv[2], for the leak check too


def after_exit(paths, record):
    """Under the container's lock, for a container whose end finish() has just
    recorded: if its policy wants it restarted, hand the backoff and the
    start to a restarter and say so in the record."""
    from bocker import trace
    from bocker.runtime import records, restartpolicy

    policy = restartpolicy.of_spec(record["Spec"])
    st = record["State"]
    if policy.name == "no" or record["Spec"].get("remove") or st.get("Running"):
        return
    if not restartpolicy.after_exit(policy, st.get("ExitCode", 0),
                                    record.get("HasBeenManuallyStopped", False),
                                    record.get("RestartCount", 0)):
        return
    ran = records.parse_iso(st.get("FinishedAt")) - records.parse_iso(st.get("StartedAt"))
    delay = restartpolicy.next_delay(record.get("RestartDelayMs", 0), ran)
    try:
        with trace.span("restart scheduled", container=record["Id"], delay_ms=delay) as sp:
            pid = _spawn(paths, record["Id"], delay)
            sp.set(f"pid {pid}")
    except (OSError, ValueError) as e:  # the end stays recorded; say why nothing follows
        st["Error"] = f"cannot schedule its restart: {e}"
        records.save(paths, record)
        return
    record.update(RestartCount=record.get("RestartCount", 0) + 1, RestartDelayMs=delay)
    st.update(Status="restarting", Restarting=True, RunnerPid=pid,
              RunnerStartTime=records.proc_start_time(pid))
    records.save(paths, record)


def _spawn(paths, cid, delay_ms):
    """Start a restarter, detached (nobody's child, in a session of its
    own: it outlives the monitor or attached bocker that asks for it);
    returns its PID."""
    import errno
    import select
    import subprocess

    argv = [sys.executable, "-m", _ENTRY, paths.root, cid, str(delay_ms)]
    # sh's `&` is the double fork, for a millisecond (a Python one would
    # start an interpreter, 20-60 ms, under the container's lock): the restarter
    # is sh's child, and sh exits once it has printed its PID.  The argv
    # goes as sh's "$@", never through its parser.
    proc = subprocess.Popen(["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 & echo $!',
                             "sh", *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd="/", start_new_session=True)
    try:
        if not select.select([proc.stdout], [], [], 10)[0]:  # bounded: we hold the lock
            proc.kill()
            raise OSError(errno.ETIMEDOUT, "the restarter did not start")
        line = proc.stdout.readline()
    finally:
        proc.stdout.close()
        proc.wait()
    return int(line)


def pending(record):
    """True if the record says it waits for a restarter."""
    return record["State"].get("Status") == "restarting"


def cancel(paths, cid, manually=True):
    """End a pending restart (its restarter killed and gone) and, with
    manually, record a user's stop of a running or restarting container
    (Docker's HasBeenManuallyStopped: its policy will not restart it).
    Returns True if a restart was pending."""
    from bocker.errors import CorruptRecord
    from bocker.runtime import records

    with records.locked(paths, cid):
        try:
            stored = records.read_stored(paths, cid)
        except (FileNotFoundError, CorruptRecord):
            return False  # nothing pending that a record could say
        st = stored["State"]
        was_pending = pending(stored)
        changed = manually and (st.get("Running") or was_pending) \
            and not stored.get("HasBeenManuallyStopped")
        if changed:
            stored["HasBeenManuallyStopped"] = True
        if was_pending:
            _end(st.get("RunnerPid"), st.get("RunnerStartTime"))
            st.update(Status="exited", Restarting=False)
        if changed or was_pending:
            with records.unless_full():  # rm -f and stop must work on a full disk
                records.save(paths, stored)
        return was_pending


def _end(pid, start_time):
    """SIGKILL the restarter pid (if it is still the process that started
    at start_time) and wait until it is gone.  Called under the lock, so
    it is never inside its own locked start: it sleeps, or waits for us."""
    import select
    import signal

    from bocker.kernel import native
    from bocker.runtime import records

    try:
        pidfd = native.pidfd_open(pid)
    except OSError:
        return  # gone already
    try:
        if records.proc_start_time(pid) == start_time:
            native.pidfd_send_signal(pidfd, signal.SIGKILL)
            select.select([pidfd], [], [], 10)
    except OSError:
        pass  # it exited meanwhile
    finally:
        os.close(pidfd)


def settle(paths, cid, timeout=10.0):
    """Wait (at most timeout seconds) until the end of cid's last run is
    recorded: a container whose PID 1 has exited while its keeper is still
    in finish() (the cgroup, under the same name, not yet removed) must
    not be started again before that."""
    from bocker.runtime import records

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = records.read_stored(paths, cid)["State"]
        except (FileNotFoundError, ValueError):
            return
        if not st.get("Running") or records.keeper_gone(st) \
                or records.alive(st.get("Pid"), st.get("PidStartTime")):
            return
        time.sleep(0.005)


def reset(record):
    """A start by the user, or at boot: restarts are counted from 0 again,
    the backoff starts over, the user's stop is forgotten (Docker's
    ResetRestartManager(true) and HasBeenManuallyStopped = false)."""
    record.update(RestartCount=0, RestartDelayMs=0, HasBeenManuallyStopped=False)


def restart(paths, ref, timeout=None, sig=None):
    """`bocker restart`: stop (its stop signal, SIGKILL after timeout
    seconds, None: its --stop-timeout or 10: signals.stop; a created or
    exited container is left as it is), then start it again, detached, as
    the user's start.  sig: restart -s (a number), else its stop signal."""
    from bocker import events
    from bocker.runtime import lifecycle, signals

    cid = signals.stop(paths, ref, timeout, sig)
    started = lifecycle.start(paths, cid)
    events.container(paths, lifecycle.load(paths, cid), "restart")
    return started


def at_boot(paths, log=print, error=print):
    """Start the containers whose policy says so at boot (restartpolicy.
    at_boot), as the user's start; returns their IDs.  Each record is
    made truthful first (records.load finishes a container whose keeper
    the reboot ended).  A container that cannot start is named on error
    and the others still start."""
    from bocker.errors import BockerError
    from bocker.runtime import lifecycle, records, restartpolicy

    started = []
    for record in records.list_all(paths):
        st = record["State"]
        if st.get("Running") or pending(record):
            continue
        if not restartpolicy.at_boot(restartpolicy.of_spec(record["Spec"]),
                                     st.get("ExitCode", 0),
                                     record.get("HasBeenManuallyStopped", False),
                                     record.get("RestartCount", 0), bool(st.get("StartedAt"))):
            continue
        reset(record)
        try:
            lifecycle.start_again(paths, record)
        except (BockerError, OSError) as e:
            error(f"bocker: cannot start {record['Id']}: {getattr(e, 'strerror', None) or e}")
            continue
        log(f"Started: {record['Id']}")
        started.append(record["Id"])
    return started


# ------------------------------------------------------------ the restarter

def _detach():
    """The restarter's own session, no stdio, no directory of the root's
    held busy (an unmount must not fail for us)."""
    try:
        os.setsid()
    except OSError:
        pass  # a group leader already: sh made it one

    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    os.chdir("/")


def _restart_if_still_wanted(paths, cid):
    """Under the lock: start the container again if its record still waits
    for this process (not removed, stopped, started or taken over since)."""
    from bocker.errors import BockerError
    from bocker.runtime import lifecycle, records

    if not os.path.isdir(paths.container(cid)):
        return  # removed meanwhile (and the lock file's root may be gone too)
    with records.locked(paths, cid):
        try:
            stored = records.read_stored(paths, cid)
        except FileNotFoundError:
            return
        st, me = stored["State"], os.getpid()
        if not pending(stored) or st.get("RunnerPid") != me \
                or st.get("RunnerStartTime") != records.proc_start_time(me) \
                or stored.get("HasBeenManuallyStopped"):
            return
        record = records.load(paths, cid)
        record["State"]["Restarting"] = False
        record["HasBeenManuallyStopped"] = False
        try:
            lifecycle.start_again(paths, record)
        except (BockerError, OSError) as e:  # Docker: the container stays stopped
            stored["State"].update(Status="exited", Restarting=False,
                                   Error=f"restart failed: {getattr(e, 'strerror', None) or e}")
            records.save(paths, stored)


def main(argv):
    """`python -m bocker.runtime.restarter ROOT ID DELAY_MS`: sleep
    DELAY_MS, then restart the container if it is still wanted."""
    root, cid, delay_ms = argv
    _detach()
    time.sleep(int(delay_ms) / 1000)
    from bocker.state import Paths

    _restart_if_still_wanted(Paths(root), cid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
