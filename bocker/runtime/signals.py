"""Reaching a running container's PID 1 through a pidfd checked against
its start time: kill, stop (SIGTERM, then SIGKILL) and wait."""
import os
import select
import signal
import time

from bocker import events
from bocker.errors import BockerError
from bocker.kernel import native
from bocker.runtime.records import load, proc_start_time, resolve


def running(paths, ref):
    """The record of the running container ref names (else BockerError)."""
    cid = resolve(paths, ref)
    record = load(paths, cid)
    if not record["State"].get("Running"):
        raise BockerError(f"Container '{ref}' exists but is not running")
    return record


def pidfd_of(record):
    """A pidfd for the container's PID 1, checked against its start time
    so a recycled PID is never signalled."""
    st = record["State"]
    pidfd = native.pidfd_open(st["Pid"])
    if proc_start_time(st["Pid"]) != st.get("PidStartTime"):
        os.close(pidfd)
        raise BockerError(f"Container '{record['Id']}' exists but is not running")
    return pidfd


def _pidfd_or_none(record):
    try:
        return pidfd_of(record)
    except (OSError, BockerError):
        return None


def kill(paths, ref, sig=signal.SIGKILL):
    """Send a signal to a running container's PID 1.  As Docker, any kill
    is the user's stop to the restart policy (restarter.cancel); one that
    finds the container waiting to restart just ends that restart."""
    from bocker.runtime import restarter

    cid = resolve(paths, ref)
    if restarter.cancel(paths, cid):
        return cid
    record = load(paths, cid)
    if not record["State"].get("Running"):
        raise BockerError(f"Container '{ref}' exists but is not running")
    pidfd = pidfd_of(record)
    try:
        native.pidfd_send_signal(pidfd, sig)
    finally:
        os.close(pidfd)
    events.container(paths, record, "kill", signal=str(int(sig)))
    if sig == signal.SIGKILL:  # as Docker: a paused container killed is thawed to die
        from bocker.runtime import pause

        pause.thaw_after(paths, record)
    return record["Id"]


DEFAULT_STOP_TIMEOUT = 10.0


def stop_settings(config, timeout=None, sig=None):
    """(signal number, seconds or None for forever) of a stop: sig (stop
    -s, a number), else the container's StopSignal (--stop-signal, or its
    image's; SIGTERM) and timeout, else its StopTimeout (-1: forever),
    else 10 s."""
    from bocker import units

    try:
        if sig is None:
            sig = units.parse_signal(str(config.get("StopSignal") or "SIGTERM")[:32])
    except BockerError:  # a record from elsewhere: bocker's own check refused it at create
        sig = signal.SIGTERM
    if timeout is None:
        stored = config.get("StopTimeout")
        timeout = float(stored) if isinstance(stored, int) else DEFAULT_STOP_TIMEOUT
    return sig, None if timeout < 0 else timeout


def stop(paths, ref, timeout=None, sig=None):
    """The stop signal (sig, a number: stop -s; else SIGTERM unless
    --stop-signal or the image said),
    then SIGKILL after timeout seconds (None: the container's
    --stop-timeout, else 10; negative: never); returns when it exited.
    A paused container is thawed after the signal, as Docker does, so
    that it gets it.  A container that is not running is left as it is;
    one waiting to restart does not.  Its restart policy never undoes this
    stop (restarter.cancel: Docker's HasBeenManuallyStopped)."""
    from bocker.runtime import pause, restarter

    cid = resolve(paths, ref)
    restarter.cancel(paths, cid)
    record = load(paths, cid)
    if record["State"].get("Running"):
        sig, grace = stop_settings(record["Config"], timeout, sig)
        pidfd = _pidfd_or_none(record)
        if pidfd is not None:
            try:
                native.pidfd_send_signal(pidfd, sig)
                events.container(paths, record, "kill", signal=str(int(sig)))
                pause.thaw_after(paths, record)
                if not select.select([pidfd], [], [], grace)[0]:
                    native.pidfd_send_signal(pidfd, signal.SIGKILL)
                    events.container(paths, record, "kill", signal=str(int(signal.SIGKILL)))
                    select.select([pidfd], [], [], 30)
            except OSError:
                pass  # it exited on its own meanwhile
            finally:
                os.close(pidfd)
        wait(paths, cid)
        events.container(paths, record, "stop")
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
        pidfd = _pidfd_or_none(record)
        if pidfd is not None:  # sleep until PID 1 exits
            try:
                select.select([pidfd], [], [], 1.0)
            finally:
                os.close(pidfd)
        else:  # exited; its keeper is writing exit.json
            time.sleep(0.005)
        if deadline is not None and time.monotonic() > deadline:
            raise BockerError(f"timed out waiting for container '{ref}'")
