"""pause and unpause: a running container's cgroup frozen or thawed
(kernel/freezer.py), and its record saying so (State.Paused, Status
"paused", as Docker's), under the container's lock."""
from bocker import events
from bocker.errors import BockerError
from bocker.kernel import freezer
from bocker.runtime import records


def pause(paths, ref):
    """Freeze every process of a running container; returns its ID."""
    return _set(paths, ref, True)


def unpause(paths, ref):
    """Thaw a paused container; returns its ID."""
    return _set(paths, ref, False)


def _set(paths, ref, on):
    with records.locked_current(paths, ref) as (cid, record):
        st = record["State"]
        if not st.get("Running"):
            raise BockerError(f"Container {ref} is not running")
        if on and st.get("Paused"):
            raise BockerError(f"Container {ref} is already paused")
        if not on and not st.get("Paused"):
            raise BockerError(f"Container {ref} is not paused")
        freezer.set_frozen(cid, on)
        st.update(Paused=on, Status="paused" if on else "running")
        records.save(paths, record)
    events.container(paths, record, "pause" if on else "unpause")
    return cid


def thaw_after(paths, record):
    """Thaw a paused container (stop and kill: a signal reaches a frozen
    task only once it is thawed) and record it running; a no-op for one
    not paused.  Errors are left to the caller's wait."""
    if not record["State"].get("Paused"):
        return
    cid = record["Id"]
    try:
        freezer.set_frozen(cid, False)
    except (OSError, BockerError):
        return  # it is ending anyway (the group is going)
    with records.locked(paths, cid) as here:
        if not here:
            return
        try:
            stored = records.read_stored(paths, cid)
        except (FileNotFoundError, BockerError):
            return
        if stored["State"].get("Paused"):
            stored["State"].update(Paused=False,
                                   Status="running" if stored["State"].get("Running")
                                   else stored["State"].get("Status"))
            records.save(paths, stored)
    events.container(paths, record, "unpause")
