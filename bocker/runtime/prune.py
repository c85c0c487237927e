"""`container prune`, the leftovers `system prune` also removes, and
`system df`'s accounting.

Sizes are the apparent size of a rootfs's files (store.tree_size, as
`du --apparent-size`), not btrfs's exclusive bytes: a container's
snapshot shares its extents with its image, so its size is an upper bound
on what removing it frees (exact numbers need btrfs quotas, which bocker
does not turn on).
"""
import os

from bocker import ids, state
from bocker.errors import BockerError
from bocker.kernel import store
from bocker.runtime import records


def container_size(paths, cid):
    """Apparent size in bytes of a container's rootfs (0 if it is gone)."""
    try:
        return store.tree_size(os.path.join(paths.container(cid), "rootfs"))
    except FileNotFoundError:
        return 0


def stopped(record):
    """True for a container prune removes: exited.  A created one is a
    start in progress (its creator is alive, else load finished it)."""
    return record["State"].get("Status") == "exited"


def prune_containers(paths):
    """Remove every stopped container as `rm` does (what it held is given
    back); returns ([removed IDs], bytes reclaimed)."""
    from bocker.runtime import lifecycle

    removed, size = [], 0
    for record in records.list_all(paths):  # finishes those whose keeper is gone
        if not stopped(record):
            continue
        cid = record["Id"]
        bytes_ = container_size(paths, cid)
        try:
            lifecycle.remove(paths, cid)
        except BockerError:
            continue  # started again or removed meanwhile
        removed.append(cid)
        size += bytes_
    return removed, size


def prune_leftovers(paths):
    """What a crash left of containers that have no record: their
    directory (a create or rm killed between making or removing it and
    its container.json, which no listing shows), then cgroups named
    ps_<12 hex> under bocker's parent, address leases (and the veth,
    guard entries and ports of their address), user-namespace id blocks
    and name claims.  Under the root's lock, which every create holds
    (shared) from its mkdir until its record is saved, so no start in
    progress can lose them.  Returns lines naming what was removed."""
    from bocker.confine import userns
    from bocker.kernel import cgroups
    from bocker.net import ipam
    from bocker.runtime import names

    with state.locked(paths.lock):
        recordless = _recordless_containers(paths)
        existing = {e for e in _entries(paths.containers) if ids.is_id(e, "ps")}
        cg = cgroups.driver()
        groups = sorted(n for n in cg.children() if ids.is_id(n, "ps") and n not in existing)
        for name in groups:
            cg.destroy(name)
        leases = ipam.prune(paths.leases, existing)
        blocks = userns.prune(paths.userns, existing)
        taken = names.prune(paths, existing)
    unwire(paths, leases)
    return ([f"container directory {n}" for n in recordless]
            + [f"cgroup {n}" for n in groups]
            + [f"lease {ip} ({owner})" for ip, owner in sorted(leases.items())]
            + [f"userns block {uid} ({owner})" for uid, owner in sorted(blocks.items())]
            + [f"name {name} ({owner})" for name, owner in sorted(taken.items())])


def _recordless_containers(paths):
    # Call holding the root's lock.  create makes a directory, its snapshot
    # and its record under that lock (shared), and every removal (rm,
    # --rm's finish, reap_orphan) deletes the record and then the rest
    # under the container's own lock: a directory without container.json,
    # seen under both, is one of them killed half-way, never one in
    # progress.
    from bocker.runtime.finish import remove_dir

    gone = []
    for entry in sorted(_entries(paths.containers)):
        if not ids.is_id(entry, "ps"):
            continue
        with records.locked(paths, entry) as here:
            if here and not os.path.exists(records.record_path(paths, entry)):
                remove_dir(paths.container(entry))
                gone.append(entry)
    return gone


def unwire(paths, leases):
    """The network side of leases ({ip: owner}) already dropped: each
    owner's veth if one is left, its guard entries and published ports
    (each a no-op if there are none)."""
    from bocker.runtime import networking

    if not leases:
        return
    try:
        table = networking.network_config(paths)["table"]
    except BockerError:
        return  # torn down: its tables went with it
    from bocker.net import network

    from bocker import claims

    for ip, owner in leases.items():
        network.detach(owner, ip, table)
        network.unpublish(owner, table)
        claims.release(networking.hostports_dir(paths), owner)
        claims.release(networking.macs_dir(paths), owner)


def disk_usage(paths):
    """system df's rows: {kind: (total, active, size, reclaimable)} for
    Images (active: some container uses it; sizes as recorded) and
    Containers (active: running; sizes of their rootfs), and the Build
    Cache (active: what built images stand on, which prune keeps)."""
    from bocker.image import images

    imgs, ctrs = images.list_all(paths), records.list_all(paths)
    used = {r["Image"] for r in ctrs}
    isize = {r["id"]: r.get("size", 0) for r in imgs}
    csize = {r["Id"]: container_size(paths, r["Id"]) for r in ctrs}
    running = {r["Id"] for r in ctrs if r["State"].get("Running")}
    return {
        "Images": (len(imgs), len(used & set(isize)), sum(isize.values()),
                   sum(s for i, s in isize.items() if i not in used)),
        "Containers": (len(ctrs), len(running), sum(csize.values()),
                       sum(s for i, s in csize.items() if i not in running)),
        "Build Cache": _build_cache_usage(paths, imgs),
    }


def _build_cache_usage(paths, imgs):
    if not os.path.isdir(paths.buildcache):
        return 0, 0, 0, 0
    from bocker.build import cache

    return cache.usage(paths, cache.used_keys(imgs))


def _entries(directory):
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []
