"""Container records on disk: container.json beside the rootfs (what it
stores and the Docker-shaped view derived on load: recordshape.py), and
exit.json, written once by whoever reaped the container (the attached
bocker process or the detached container's monitor)."""
import os
import time

from bocker import ids, state
from bocker.errors import NoSuchContainer
from bocker.runtime import recordshape


def record_path(paths, cid):
    """The container's container.json."""
    return os.path.join(paths.container(cid), "container.json")


def exit_path(paths, cid):
    """The container's exit.json (how it ended)."""
    return os.path.join(paths.container(cid), "exit.json")


def log_path(paths, cid):
    """The container's log (attach.py's record format)."""
    return os.path.join(paths.container(cid), "log")


def read_stored(paths, cid):
    """A container's record as stored (upgraded from an older bocker's
    form, State as written); FileNotFoundError if there is none."""
    return recordshape.stored(state.read_json(record_path(paths, cid)))


def load(paths, cid):
    """A container's record, its State brought up to date, with Docker's
    derived fields (HostConfig, Confinement, ...)."""
    try:
        return recordshape.with_view(refresh(paths, read_stored(paths, cid)))
    except (FileNotFoundError, ValueError):  # ValueError: torn by a crash
        raise NoSuchContainer(cid) from None


def save(paths, record):
    """Write a container's record (atomically; see state.write_json): its
    stored part only, the derived fields are rebuilt on load."""
    state.write_json(record_path(paths, record["Id"]), recordshape.stored(record),
                     durable=False)


def list_all(paths):
    """Every container record, oldest first."""
    out = state.read_records(paths.containers, "ps", lambda i: load(paths, i),
                             missing=(NoSuchContainer,))
    return sorted(out, key=lambda r: r["Created"])


def resolve(paths, ref):
    """Container ID for an ID, unique prefix or name."""
    records = {r["Id"]: {r["Name"]} for r in list_all(paths)}
    return ids.resolve(ref, records, NoSuchContainer)


def proc_start_time(pid):
    """Start time of pid in clock ticks, to tell it from a recycled PID."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(data.rsplit(b")", 1)[1].split()[19])


def alive(pid, start_time):
    """True if pid is still the process that started at start_time."""
    return bool(pid) and proc_start_time(pid) == start_time


def refresh(paths, record):
    """Fold exit.json into a running record; mark it exited if both the
    container and the process in charge of it are gone."""
    st = record["State"]
    if not st.get("Running"):
        return record
    try:
        ended = state.read_json(exit_path(paths, record["Id"]))
    except (FileNotFoundError, ValueError):
        ended = None
    if ended:
        st.update(Running=False, Status="exited", Pid=0, **ended)
    elif not alive(st["Pid"], st.get("PidStartTime")) and \
            not alive(st.get("RunnerPid"), st.get("RunnerStartTime")):
        st.update(Running=False, Status="exited", Pid=0, ExitCode=255,
                  Error="the process in charge of the container disappeared")
    return record


def now_iso():
    """UTC now as RFC 3339 with nanoseconds, like Docker's timestamps."""
    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + f".{t % 10**9:09d}Z"


def parse_iso(text):
    """Seconds since the epoch for a now_iso() string (0 if empty)."""
    if not text:
        return 0.0
    import calendar

    base, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)
