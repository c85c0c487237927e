"""Creating a container: the request checked before anything is made,
then its directory, rootfs snapshot, user-namespace ids and record, each
undone on the caller's ExitStack if a later step fails."""
import os

from bocker import events, faults, ids, state
from bocker.confine import seccomp, userns
from bocker.errors import BockerError, RunRefused
from bocker.runtime import names, networking, pool, records, recordshape
from bocker.runtime.host import Host


def image_id(paths, ref):
    """The ID of the image ref (a name, ID or prefix) names."""
    from bocker.image import images

    return images.resolve(paths, ref)


def image_config(paths, image_id):
    """The image's config (Cmd, Env, WorkingDir, ...); {} if it has none
    or, for a restart, if the image was removed since."""
    from bocker.image import images

    try:
        return images.load(paths, image_id).get("config") or {}
    except BockerError:
        return {}


def check_request(req):
    """Refuse what cannot run before anything is made (Docker's 125);
    returns the published ports, parsed once for this start."""
    try:
        if req.name:
            ids.check_container_name(req.name)
        req.check()
        return networking.parse_ports(req)
    except BockerError as e:
        raise RunRefused(str(e)) from None


def image_fields(image_config):
    """Refuse an image whose Labels or StopSignal a container would take
    (hostile input: a dict of strings, bounded; a signal bocker knows)."""
    from bocker.runtime import checks

    try:
        checks.check_labels(image_config.get("Labels") or {}, "image config Labels")
        sig = image_config.get("StopSignal")
        if sig is not None:
            if not isinstance(sig, str) or len(sig) > 32:
                raise BockerError("invalid image config StopSignal")
            checks.check_stop(sig, None)
    except BockerError as e:
        raise RunRefused(str(e)) from None


def create(paths, req, image_id, image_config, undo, host=None, rootfs_base=None):
    """The container's directory, name, rootfs snapshot, user-namespace ids
    and record; returns the record.  rootfs_base: the subvolume to snapshot
    instead of the image's (a build step's; never from the pool).  No lock is held past the mkdir: the
    name is a claim (names.py), the ids too, the rest is the container's."""
    host = host or Host()
    networking.resolve_mode(paths, req)  # container:NAME -> container:<ID>
    image_fields(image_config)
    cid = ids.new_id("ps")
    # The root's lock, shared, from the mkdir until the record is saved:
    # starts go on side by side, while prune_leftovers (which takes it
    # exclusively) never sees a directory of a create in progress without
    # its record, nor its claims (lease, ids, name, cgroup) without it.
    with state.locked(paths.lock, shared=True):
        faults.point("create.make_dir")
        cdir = _make_dir(paths, cid, host, undo)
        faults.point("create.claim_name")
        if req.name:
            names.claim(paths, req.name, cid)
        else:  # Docker's adjective_surname, claimed as a --name would be
            req.name = names.claim_generated(paths, cid)
        undo.callback(names.release, paths, cid, req.name)
        faults.point("create.snapshot")
        rootfs = os.path.join(cdir, "rootfs")
        # a snapshot made ahead (runtime/pool.py), else one made now
        if rootfs_base is not None:
            host.store.snapshot(rootfs_base, rootfs)
        elif not pool.take_rootfs(paths, image_id, rootfs):
            host.store.snapshot(_image_rootfs(paths, image_id), rootfs)
        faults.point("create.pin_profile")
        req.security_opt = seccomp.pin_profile(cdir, req.security_opt)
        record = recordshape.new_record(cid, req, image_id, image_config)
        if rootfs_base is None:  # (a build step's base is no image to prewarm)
            pool.note_use(paths, image_id, record["Config"]["Cmd"][0])  # what to prewarm
        record["Mounts"] = _mounts(paths, cid, req, image_id, image_config, undo)
        # who is creating it: if this process dies before the start marks
        # it running, records.keeper_gone lets the next command finish it
        me = os.getpid()
        record["State"].update(RunnerPid=me, RunnerStartTime=records.proc_start_time(me))
        if req.userns == "auto":
            faults.point("create.allocate_ids")
            record["IdMaps"] = _allocate_ids(paths, cid, undo)
        faults.point("create.save_record")
        records.save(paths, record)
    events.container(paths, record, "create")
    return record


def _make_dir(paths, cid, host, undo):
    cdir = paths.container(cid)
    os.makedirs(paths.containers, exist_ok=True)
    os.mkdir(cdir, 0o700)  # (under the root's lock, shared: see create)
    undo.callback(host.store.remove_dir, cdir, "container.json")
    return cdir


def _mounts(paths, cid, req, image_id, image_config, undo):
    """The record's Mounts (bocker/volume/plan.py); a run without volumes
    does not import it."""
    if not (req.volumes or req.mounts or req.volumes_from or image_config.get("Volumes")):
        return []
    from bocker.volume import plan

    return plan.plan(paths, cid, req, image_config, _image_rootfs(paths, image_id), undo)


def _image_rootfs(paths, image_id):
    from bocker.image import images

    return images.rootfs(paths, image_id)


def _allocate_ids(paths, cid, undo):
    """A free block of 65536 host ids: the container's IdMaps."""
    uid, gid = userns.allocate(paths.userns, cid, userns.pool(),
                               lambda: os.listdir(paths.containers))
    undo.callback(userns.release, paths.userns, cid)
    return {"UidMap": userns.id_map(uid), "GidMap": userns.id_map(gid)}
