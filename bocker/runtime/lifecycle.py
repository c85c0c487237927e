"""The verbs on a container that is not running: start it again, remove
it, commit its filesystem as an image."""
import contextlib
import os

from bocker import events, faults, trace
from bocker.confine import userns
from bocker.errors import BockerError, CorruptRecord, NoSuchContainer
from bocker.kernel import cgroups
from bocker.runtime import names, networking, records, recordshape
from bocker.runtime.finish import remove_dir
from bocker.runtime.records import load, resolve
from bocker.runtime.signals import stop


def start(paths, ref, attach=False, interactive=False):
    """Start a stopped container again with its first options (its -t and
    -i too); detached (returns its ID), or attached (returns Started: see
    run.wait_attached), with our stdin if interactive (else a container
    made with -i reads /dev/null: nobody would ever end its input).  The
    user's start: a pending policy restart gives way, and restarts are
    counted from 0 again.  A running container is left as it is (its ID
    returned, as Docker's no-op), unless attach asks for a start.  A
    created one (`bocker create`) starts for the first time."""
    from bocker.runtime import restarter

    cid = resolve(paths, ref)
    restarter.cancel(paths, cid, manually=False)
    restarter.settle(paths, cid)  # a `stop` just before: its keeper may still be releasing
    record = load(paths, cid)
    if record["State"].get("Running"):
        if not attach:  # Docker: starting a running container is a no-op
            return cid
        raise BockerError(f"Container '{ref}' is already running")
    restarter.reset(record)
    return start_again(paths, record, attach, interactive)


def start_again(paths, record, attach=False, interactive=False):
    """Launch the container of a loaded record with its first options, as
    start() says; detached, it returns its ID (restarter.py calls this for
    a policy's restart)."""
    from bocker.runtime import create
    from bocker.runtime import start as start_path

    cid = record["Id"]
    req = recordshape.request(record)
    image_config = recordshape.image_config(record, lambda i: create.image_config(paths, i))
    config = record["Config"]
    with contextlib.ExitStack() as undo:
        started = start_path.launch(paths, record, req, image_config, undo, detach=not attach,
                                    tty=bool(config.get("Tty")),
                                    interactive=bool(config.get("OpenStdin"))
                                    and (interactive or not attach),
                                    stdin_once=attach and bool(config.get("StdinOnce")))
        undo.pop_all()
    return started if attach else cid


def remove(paths, ref, force=False, volumes=False):
    """Delete a container: snapshot, cgroup, record (-f kills it first).
    With -f, a container whose record is corrupt goes too (what it holds
    is found by its ID: cgroup, lease, id block, name).  volumes (rm -v):
    its anonymous volumes go too (named ones never), once its own lock is
    let go (a volume's removal takes the root's lock)."""
    from bocker.runtime import restarter

    cid = resolve(paths, ref)
    if force:  # a pending restart ends, and none follows the kill below
        restarter.cancel(paths, cid)
    try:
        record = load(paths, cid)
    except CorruptRecord:
        if not force:
            raise
        remove_by_id(paths, cid)
        return cid
    if restarter.pending(record):
        raise BockerError(f"container '{ref}' is restarting: stop it first or use -f")
    if record["State"].get("Running"):
        if not force:
            raise BockerError(f"container '{ref}' is running: stop it first or use -f")
        faults.point("lifecycle.remove.stop")
        stop(paths, cid, timeout=0)
    # the container's lock, not the root's: a finish of this container
    # (its monitor's) waits, every other command goes on
    with records.locked(paths, cid) as here:
        if not here or not os.path.exists(records.record_path(paths, cid)):
            raise NoSuchContainer(ref)  # removed meanwhile (by another rm)
        faults.point("lifecycle.remove.destroy_cgroup")
        with trace.span("cgroup remove", name=cid):
            cgroups.driver().destroy(cid)
        faults.point("lifecycle.remove.release_network")
        networking.release(paths, record)
        if record["Spec"].get("network", "bridge") == "bridge":
            from bocker.net import network

            faults.point("lifecycle.remove.detach_veth")
            with trace.span("netlink delete veth", container=cid):
                network.detach(cid)  # the kernel would, a little later
        faults.point("lifecycle.remove.remove_dir")
        remove_dir(paths.container(cid))
    faults.point("lifecycle.remove.release_ids")
    userns.release(paths.userns, cid)
    names.release(paths, cid, record["Name"])
    if volumes and record.get("Mounts"):
        from bocker.volume import volumes as volume_store

        volume_store.remove_anonymous(paths, record["Mounts"])
    events.container(paths, record, "destroy")
    return cid


def remove_by_id(paths, cid):
    """Remove a container whose record cannot say what it holds (corrupt,
    or gone with its removal cut short): whatever its ID holds goes, the
    cgroup (and what still runs in it), leases, veth, guard entries and
    ports, directory, id block and name."""
    from bocker.net import ipam
    from bocker.runtime import prune

    with records.locked(paths, cid):
        cgroups.driver().destroy(cid)  # kills whatever still runs in it
        held = {ip: owner for ip, owner in ipam.leases(paths.leases).items() if owner == cid}
        ipam.release(paths.leases, cid)
        prune.unwire(paths, held)      # its veth, guard entries and ports
        remove_dir(paths.container(cid))
    userns.release(paths.userns, cid)
    names.release(paths, cid)
    events.emit(paths, "container", "destroy", cid)


def commit(paths, ref, image_ref=None, name=None, *, author=None, message=None, changes=(),
           pause=True):
    """Make an image of a container's filesystem.

    With image_ref (p8952/bocker's form) the image's content is replaced
    and its ID kept: returns (removed_id, created_id), both that ID.
    Otherwise a new image is created: returns (None, new_id), its config
    the container's image's with changes (commit -c, image.changes)
    applied, and author and message (-a, -m) in its record and its new
    history step.  pause (Docker's default): a running container is
    frozen while its filesystem is snapshotted, and thawed after, even
    if the commit fails.
    """
    from bocker.image import changes as changing
    from bocker.image import images

    faults.point("lifecycle.commit")
    cid = resolve(paths, ref)
    record = load(paths, cid)
    rootfs = os.path.join(paths.container(cid), "rootfs")
    source = f"container {cid}"
    if image_ref and not name:
        if author or message or changes:
            raise BockerError("-a, -m and -c make a new image: name it with --name, not "
                              "by the image whose content this replaces")
        image_id = images.resolve(paths, image_ref)
        with _paused(paths, record, pause):
            images.replace_rootfs(paths, image_id, rootfs, source)
        return image_id, image_id
    try:
        base = images.load(paths, record["Image"])
    except BockerError:  # its image was removed since: what the container kept of it
        base = {"config": dict(record.get("ImageConfig") or {})}
    config = changing.apply(base.get("config") or {}, changes)  # refused before the pause
    extra = {"history": _history(base, record, author, message)}
    if author:
        extra["author"] = author[:256]
    if message:
        extra["comment"] = message[:1024]
    with _paused(paths, record, pause):
        new_id = images.create(paths, source, None, name=name or image_ref, config=config,
                               snapshot_of=rootfs, extra=extra)
    return None, new_id


@contextlib.contextmanager
def _paused(paths, record, pause):
    """commit -p: a running container not paused yet is frozen (pause.py)
    for the block and thawed after it, whatever the block raised."""
    from bocker.runtime import pause as pausing

    st = record["State"]
    if not (pause and st.get("Running") and not st.get("Paused")):
        yield
        return
    pausing.pause(paths, record["Id"])
    try:
        yield
    finally:
        pausing.unpause(paths, record["Id"])


def _history(base, record, author, message):
    """The new image's history: its base's steps (or one naming the base,
    for an image made here without one), then this commit's."""
    import time

    from bocker.runtime import inspectview

    steps = [dict(s) for s in base.get("history") or [] if isinstance(s, dict)]
    if not steps and base.get("source"):
        steps = [{"created": inspectview.rfc3339(base.get("created")),
                  "created_by": f"bocker: {base['source']}"}]
    argv = record.get("Config", {}).get("Cmd") or []
    step = {"created": inspectview.rfc3339(time.time()),
            "created_by": " ".join(str(a) for a in argv)[:8192]}
    if author:
        step["author"] = author[:256]
    if message:
        step["comment"] = message[:1024]
    return steps + [step]
