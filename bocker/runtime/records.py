"""Container records on disk: container.json beside the rootfs (what it
stores and the Docker-shaped view derived on load: recordshape.py), and
exit.json, written once by the container's monitor, which reaped it."""
import contextlib
import errno
import os
import time

from bocker import ids, state
from bocker.errors import CorruptRecord, NoSuchContainer
from bocker.kernel import procfs
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
    form, State as written); FileNotFoundError if there is none,
    CorruptRecord (naming it and the file) if it is not a record."""
    path = record_path(paths, cid)
    try:
        record = recordshape.stored(state.read_json(path))
        _check_shape(record, cid)
        if record["Spec"].get("cgroup_parent"):  # --cgroup-parent: where its group is
            from bocker.kernel import cgroups

            cgroups.place(cid, record["Spec"]["cgroup_parent"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CorruptRecord("container", cid, path, e) from None
    return record


def _check_shape(record, cid):
    # what every command reads from a record without looking twice
    if record.get("Id") != cid:
        raise ValueError(f"its Id is {ascii(record.get('Id'))[:40]}")
    for key, kind in (("Name", str), ("Created", (int, float)), ("Image", str),
                      ("State", dict), ("Spec", dict), ("Config", dict)):
        if not isinstance(record.get(key), kind):
            raise ValueError(f"no valid {key}")
    if not isinstance(record["Config"].get("Cmd"), list) or not record["Config"]["Cmd"]:
        raise ValueError("no valid Config.Cmd")


def load(paths, cid):
    """A container's record, its State brought up to date, with Docker's
    derived fields (HostConfig, Confinement, ...).  A record nobody will
    ever finish (keeper_gone) is finished here first, so every command
    that lists or touches a container sees its truthful state and the
    first of them gives back what it held."""
    try:
        stored = read_stored(paths, cid)
        if keeper_gone(stored["State"]):
            from bocker.runtime import finish

            finish.reap_orphan(paths, cid)
            stored = read_stored(paths, cid)
        record = refresh(paths, stored)
    except FileNotFoundError:
        raise NoSuchContainer(cid) from None
    try:
        return recordshape.with_view(record)
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # a Spec not ours
        raise CorruptRecord("container", cid, record_path(paths, cid), e) from None


def locked(paths, cid):
    """The container's own lock (a flock on its directory), for a
    read-modify-write of its record: finish, reap_orphan and rm take it,
    for a few system calls each.  Yields False if the container is gone."""
    return state.locked(paths.container(cid), directory=True)


@contextlib.contextmanager
def locked_current(paths, ref):
    """The container ref names under its lock, for a read-modify-write:
    yields (cid, record), the record read while locked and refreshed
    (exit.json folded in).  NoSuchContainer if it is gone."""
    cid = resolve(paths, ref)
    with locked(paths, cid) as here:
        if not here:
            raise NoSuchContainer(ref)
        yield cid, refresh(paths, read_stored(paths, cid))


def save(paths, record):
    """Write a container's record (atomically; see state.write_json): its
    stored part only, the derived fields are rebuilt on load."""
    state.write_json(record_path(paths, record["Id"]), recordshape.stored(record),
                     durable=False)


def list_all(paths, on_broken=None):
    """Every container record, oldest first.  A corrupt one is left out
    (and passed to on_broken, a CorruptRecord naming it, if given), so one
    bad file never stops the others being listed."""
    out = state.read_records(paths.containers, "ps", lambda i: load(paths, i),
                             missing=(NoSuchContainer,), on_broken=on_broken)
    return sorted(out, key=lambda r: r["Created"])


def resolve(paths, ref):
    """Container ID for an ID, unique prefix or name (a container whose
    record is corrupt too, by its ID or the name it claimed, so that `rm
    -f` can remove it)."""
    broken = []
    records = {r["Id"]: {r["Name"]} for r in list_all(paths, on_broken=broken.append)}
    if broken:
        from bocker.runtime import names

        claimed = names.claimed(paths)
        records.update({e.ident: {n for n, o in claimed.items() if o == e.ident}
                        for e in broken})
    return ids.resolve(ref, records, NoSuchContainer)


# a PID told from a recycled one (kernel/procfs.py), by the records' names
proc_start_time, alive = procfs.start_time, procfs.alive


# A container whose end nobody saw (its keeper died with it, the host
# rebooted): not a code any process exits with, so a script can never take
# it for the container's own 255.  Docker's "dead" status would be wrong:
# there it means a removal that failed, and start and rm treat it apart.
UNKNOWN_EXIT = -1


def keeper_gone(st):
    """True if a stored State will never be finished by anyone: it says
    running, but neither the container's PID 1 nor the process in charge
    of it (its monitor) is alive; or it says created and the bocker
    creating it is gone; or it says restarting and the process that was to
    restart it (restarter.py) is gone.  A container still alive under a
    dead keeper is running, and is left so."""
    runner = alive(st.get("RunnerPid"), st.get("RunnerStartTime"))
    if st.get("Running"):
        return not runner and not alive(st.get("Pid"), st.get("PidStartTime"))
    return st.get("Status") in ("created", "restarting") and bool(st.get("RunnerPid")) \
        and not runner


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
        st.update(Running=False, Paused=False, Status="exited", Pid=0, **ended)
    elif not alive(st["Pid"], st.get("PidStartTime")) and \
            not alive(st.get("RunnerPid"), st.get("RunnerStartTime")):
        st.update(Running=False, Paused=False, Status="exited", Pid=0, ExitCode=UNKNOWN_EXIT,
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


@contextlib.contextmanager
def unless_full():
    """A block whose record write is skipped on a full filesystem."""
    # A full filesystem must not keep an ended container from giving back
    # what it holds, nor make every command that loads its record fail:
    # its end goes unrecorded (the next load finishes it again, releasing
    # nothing twice) and rm, which needs no space, still removes it.
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
