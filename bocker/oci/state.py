"""bocker-oci's state: one directory per container under --root.

<root>/<id>/state.json   what `state` prints and what every later verb
                         needs (0600; the directory 0700), written tmp +
                         rename
<root>/<id>/exec.fifo    the start gate while the container is created
<root>/<id>              flock'd by every verb that changes the container

The status is computed, never trusted from the file (the runtime is not
running while the container lives): "creating" while a create is under
way, else the init's liveness (a zombie, or a PID now owned by another
process with a different start time, is stopped), the freezer (paused)
and the gate FIFO (created until `start` removes it).
"""
import contextlib
import datetime
import json
import os
import re

from bocker import state as bstate
from bocker.errors import BockerError, InvalidArgument, NotFound
from bocker.kernel import procfs

DEFAULT_ROOT = "/run/bocker-oci"
OCI_VERSION = "1.0.2"
STATE_FILE = "state.json"
FIFO = "exec.fifo"
MAX_STATE = 16 << 20          # config.json is at most 8 MiB; the rest is small
MAX_ID = 1024
_ID = re.compile(r"^[\w+.-]+$", re.ASCII)
STATUSES = ("creating", "created", "running", "paused", "stopped")


class ContainerNotFound(NotFound):
    """An ID without a state directory (containerd looks for "does not exist")."""

    def __init__(self, cid):
        super().__init__(f"container {cid} does not exist")


class CorruptState(BockerError):
    """A state.json that is not what bocker-oci wrote."""


class WrongState(BockerError):
    """A verb the state machine does not allow in the container's status."""


def check_id(cid):
    """Refuse an ID that could not be a directory name under the root."""
    if (not isinstance(cid, str) or not cid or len(cid) > MAX_ID or cid in (".", "..")
            or not _ID.match(cid)):
        raise InvalidArgument(f"invalid container id {ascii(cid)[:80]}: "
                              "use letters, digits, '_', '+', '-' and '.'")
    return cid


class Root:
    """The state directories under one --root."""

    def __init__(self, path=None):
        self.path = os.path.abspath(path or DEFAULT_ROOT)

    def dir(self, cid):
        """<root>/<id>, for a checked ID."""
        return os.path.join(self.path, check_id(cid))

    def ensure(self):
        """Make the root (0700) if it is missing."""
        os.makedirs(self.path, mode=0o700, exist_ok=True)

    def ids(self):
        """The IDs that have a state directory, sorted."""
        try:
            entries = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(e for e in entries if _ID.match(e) and e not in (".", "..")
                      and os.path.isfile(os.path.join(self.path, e, STATE_FILE)))


def now_iso():
    """The current time as RFC 3339 with nanosecond-style precision (UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def save(cdir, record):
    """Write state.json atomically (tmp + rename), mode 0600."""
    path = os.path.join(cdir, STATE_FILE)
    tmp = f"{path}.tmp.{os.getpid()}"
    data = json.dumps(record, sort_keys=True).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load(root, cid):
    """The stored record of cid (a dict), or ContainerNotFound."""
    cdir = root.dir(cid)
    try:
        fd = os.open(os.path.join(cdir, STATE_FILE), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ContainerNotFound(cid) from None
    try:
        data = os.read(fd, MAX_STATE + 1)
    finally:
        os.close(fd)
    try:
        record = json.loads(data) if len(data) <= MAX_STATE else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("id") != cid:
        raise CorruptState(f"container {cid}: {cdir}/{STATE_FILE} is corrupt: "
                          f"'bocker-oci delete --force {cid}' removes it")
    return record


@contextlib.contextmanager
def locked(root, cid):
    """Hold the container's flock (its directory) for the block; yields
    the record loaded under it (ContainerNotFound if there is none)."""
    cdir = root.dir(cid)
    with bstate.locked(cdir, directory=True) as held:
        if not held:
            raise ContainerNotFound(cid)
        yield load(root, cid)


# ------------------------------------------------------------- status

# (state letter, start time) of a PID, and whether it still runs (kernel/procfs.py)
proc_stat, alive = procfs.stat, procfs.alive


def status(record, cdir, frozen=None):
    """The container's status now.  frozen: a callable telling whether
    its cgroup is frozen (None: never paused)."""
    if record.get("status") == "creating":
        creator = record.get("creator") or [0, 0]
        return "creating" if alive(creator[0], creator[1]) else "stopped"
    if not alive(record.get("pid"), record.get("pid_start")):
        return "stopped"
    if frozen is not None and frozen():
        return "paused"
    if os.path.lexists(os.path.join(cdir, FIFO)):
        return "created"
    return "running"


def spec_state(record, current):
    """The runtime spec's state object (`state` and the hooks' stdin)."""
    out = {
        "ociVersion": OCI_VERSION,
        "id": record["id"],
        "status": current,
        "pid": record.get("pid") or 0 if current != "stopped" else 0,
        "bundle": record.get("bundle", ""),
        "rootfs": record.get("rootfs", ""),
        "created": record.get("created", ""),
        "owner": record.get("owner", ""),
    }
    if record.get("annotations"):
        out["annotations"] = record["annotations"]
    return out


# -------------------------------------------------------- transitions

# verb -> the statuses it is allowed in, and the refusal's wording for
# the others (containerd matches "not running" for kill)
ALLOWED = {
    "start": ("created",),
    "kill": ("created", "running", "paused"),
    "delete": ("stopped",),
    "pause": ("running",),
    "resume": ("paused",),
    "exec": ("created", "running"),
    "update": ("created", "running", "paused"),
    "ps": ("created", "running", "paused", "stopped"),
}


def check_transition(verb, cid, current, force=False):
    """Raise WrongState (one line) unless verb may act on a container in
    status current.  delete --force acts on every status."""
    if verb == "delete" and force:
        return
    if current in ALLOWED[verb]:
        return
    if verb == "kill" or (verb in ("pause", "exec", "update") and current == "stopped"):
        raise WrongState(f"container {cid} is {current}: container not running")
    if verb == "start":
        raise WrongState(f"cannot start container {cid}: it is {current}, not created")
    if verb == "delete":
        raise WrongState(f"cannot delete container {cid}: it is {current}, not stopped "
                         "(use delete --force)")
    if verb == "resume":
        raise WrongState(f"container {cid} is {current}: container not paused")
    raise WrongState(f"container {cid} is {current}: cannot {verb} it")
