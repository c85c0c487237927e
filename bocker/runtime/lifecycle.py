"""The verbs on a container that is not running: start it again, remove
it, commit its filesystem as an image."""
import contextlib
import os

from bocker import state, trace
from bocker.confine import userns
from bocker.errors import BockerError
from bocker.kernel import cgroups
from bocker.runtime import networking, recordshape
from bocker.runtime.finish import remove_dir
from bocker.runtime.records import load, resolve
from bocker.runtime.signals import stop


def start(paths, ref, attach=False, interactive=False):
    """Start a stopped container again with its first options (its -t and
    -i too); detached (returns its ID), or attached (returns Started: see
    run.wait_attached), with our stdin if interactive (else a container
    made with -i reads /dev/null: nobody would ever end its input)."""
    from bocker.runtime import create
    from bocker.runtime import start as start_path

    cid = resolve(paths, ref)
    record = load(paths, cid)
    if record["State"].get("Running"):
        raise BockerError(f"Container '{ref}' is already running")
    req = recordshape.request(record)
    image_config = create.image_config(paths, record["Image"])
    config = record["Config"]
    with contextlib.ExitStack() as undo:
        started = start_path.launch(paths, record, req, image_config, undo, detach=not attach,
                                    tty=bool(config.get("Tty")),
                                    interactive=bool(config.get("OpenStdin"))
                                    and (interactive or not attach),
                                    stdin_once=attach and bool(config.get("StdinOnce")))
        undo.pop_all()
    return started if attach else cid


def remove(paths, ref, force=False):
    """Delete a container: snapshot, cgroup, record (-f kills it first)."""
    cid = resolve(paths, ref)
    record = load(paths, cid)
    if record["State"].get("Running"):
        if not force:
            raise BockerError(f"container '{ref}' is running: stop it first or use -f")
        stop(paths, cid, timeout=0)
    with trace.span("cgroup remove", name=cid):
        cgroups.driver().destroy(cid)
    networking.release(paths, record)
    if record["Spec"].get("network", "bridge") == "bridge":
        from bocker.net import network

        with trace.span("netlink delete veth", container=cid):
            network.detach(cid)  # the kernel would, a little later
    with state.locked(paths.lock):
        remove_dir(paths.container(cid))
    userns.release(paths.userns, cid)
    return cid


def commit(paths, ref, image_ref=None, name=None):
    """Make an image of a container's filesystem.

    With image_ref (p8952/bocker's form) the image's content is replaced
    and its ID kept: returns (removed_id, created_id), both that ID.
    Otherwise a new image is created: returns (None, new_id).
    """
    from bocker.image import images

    cid = resolve(paths, ref)
    record = load(paths, cid)
    rootfs = os.path.join(paths.container(cid), "rootfs")
    source = f"container {cid}"
    if image_ref and not name:
        image_id = images.resolve(paths, image_ref)
        images.replace_rootfs(paths, image_id, rootfs, source)
        return image_id, image_id
    try:
        config = images.load(paths, record["Image"]).get("config", {})
    except BockerError:  # its image was removed since: start from nothing
        config = {}
    new_id = images.create(paths, source, None, name=name or image_ref, config=config,
                           snapshot_of=rootfs)
    return None, new_id
