"""Images: a rootfs subvolume plus image.json beside it.

image.json: {"id", "source", "names": ["busybox:latest"], "created",
"size", "config": {Env, Cmd, Entrypoint, WorkingDir, User, ...}}
"""
import os
import time

from bocker import events, faults, ids, state
from bocker.errors import BockerError, CorruptRecord, NoSuchImage, NotFound
from bocker.kernel import store


def _record_path(paths, image_id):
    return os.path.join(paths.image(image_id), "image.json")


def load(paths, image_id):
    """The metadata of one image; CorruptRecord (naming it and the file)
    if image.json is not an image's."""
    path = _record_path(paths, image_id)
    try:
        record = state.read_json(path)
        _check_shape(record, image_id)
    except FileNotFoundError:
        raise NoSuchImage(image_id) from None
    except (ValueError, TypeError, AttributeError) as e:
        raise CorruptRecord("image", image_id, path, e) from None
    return record


def _check_shape(record, image_id):
    # what `images`, resolve and a run read without looking twice
    if not isinstance(record, dict) or record.get("id") != image_id:
        raise ValueError("not this image's record")
    if not isinstance(record.get("created"), (int, float)) or not isinstance(
            record.get("config", {}), dict) or not all(
            isinstance(n, str) for n in record.get("names", [])):
        raise ValueError("no valid created, config or names")


def list_all(paths, on_broken=None):
    """Every complete image's metadata, oldest first.  A corrupt one is
    left out (and passed to on_broken, a CorruptRecord, if given)."""
    out = state.read_records(paths.images, "img", lambda i: load(paths, i),
                             missing=(NoSuchImage,), on_broken=on_broken)
    return sorted(out, key=lambda r: r["created"])


def resolve(paths, ref):
    """Image ID for an ID, unique prefix or NAME[:TAG]; a full registry
    reference (docker.io/library/busybox) finds the image stored under
    its short name (busybox:latest), as Docker's names work.  An image
    whose image.json is corrupt is found by its ID (for rmi)."""
    broken = []
    records = {r["id"]: set(r.get("names", ())) for r in list_all(paths, broken.append)}
    records.update({e.ident: set() for e in broken})
    try:
        return ids.resolve(ref, records, NoSuchImage)
    except NoSuchImage:
        familiar = _familiar(ref)
        if not familiar or familiar == ref:
            raise
    try:
        return ids.resolve(familiar, records, NoSuchImage)
    except NoSuchImage:
        raise NoSuchImage(ref) from None


def _familiar(ref):
    from bocker.errors import BockerError
    from bocker.image import reference

    try:
        parsed = reference.parse(ref)
    except BockerError:
        return None
    return parsed.familiar() if not parsed.digest else None


def rootfs(paths, image_id):
    """The image's rootfs subvolume (containers snapshot it)."""
    return os.path.join(paths.image(image_id), "rootfs")


def create(paths, source, fill, name=None, config=None, snapshot_of=None, extra=None):
    """Make a new image: a subvolume that fill(rootfs_path) populates, or a
    snapshot of the subvolume snapshot_of (then fill may be None).

    extra: more fields for image.json (a pull's layers and digests).
    Nothing is left behind if fill fails.  A name moves to the new image
    from any image that had it (as `docker tag` does).  Returns the ID.

    The image is made in images/.tmp-<pid>-<id> and renamed into place,
    record and all: an img_ directory always has its image.json, and what
    a killed create leaves is named by its dead creator's PID
    (prune_leftovers removes it).
    """
    store.require_btrfs(paths.root)
    os.makedirs(paths.images, exist_ok=True)
    names = [ids.normalize_name(name)] if name else []
    image_id = ids.new_id("img")
    directory = paths.image(image_id)
    building = os.path.join(paths.images, f"{BUILDING}{os.getpid()}-{image_id}")
    faults.point("images.make_dir")
    os.mkdir(building, 0o700)
    try:
        faults.point("images.fill")
        if snapshot_of:
            store.snapshot(snapshot_of, os.path.join(building, "rootfs"))
        else:
            store.create(os.path.join(building, "rootfs"))
            fill(os.path.join(building, "rootfs"))
        record = {**(extra or {}), "id": image_id, "source": source, "names": names,
                  "created": time.time(), "config": config or {},
                  "size": store.tree_size(os.path.join(building, "rootfs"))}
        faults.point("images.write_record")
        state.write_json(os.path.join(building, "image.json"), record)
        with locked(paths):  # in whole, and its names taken from others
            os.rename(building, directory)
            _take_names(paths, names, image_id)
    except BaseException:
        _remove_dir(building)
        raise
    for n in names:
        events.emit(paths, "image", "tag", image_id, {"name": n})
    return image_id


def prune_leftovers(paths):
    """What killed creates, removals and replaces left under images/: a
    directory being built by a process that is gone, an img_ directory
    whose record a removal deleted before it was killed, the old or new
    rootfs of a replace_rootfs cut short.  Call it holding the root's
    lock.  Returns their names."""
    gone = []
    for entry in sorted(_entries(paths.images)):
        if entry.startswith(BUILDING) and not _pid_alive(entry[len(BUILDING):].split("-")[0]):
            _remove_dir(os.path.join(paths.images, entry))
            gone.append(entry)
        elif ids.is_id(entry, "img") and not os.path.exists(_record_path(paths, entry)):
            _remove_dir(paths.image(entry))
            gone.append(entry)
        elif ids.is_id(entry, "img") and any(
                os.path.lexists(rootfs(paths, entry) + x) for x in (".new", ".old")):
            _finish_replace(paths, entry)
            gone.append(f"{entry}: a replaced rootfs")
    return gone


BUILDING = ".tmp-"


def _pid_alive(text):
    """True unless text is the PID of no process (a PID reused since only
    delays the cleanup)."""
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except (ValueError, OSError):
        return True
    return True


def _entries(directory):
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _take_names(paths, names, new_id):
    for other in list_all(paths):
        if other["id"] == new_id:
            continue
        kept = [n for n in other.get("names", []) if n not in names]
        if kept != other.get("names", []):
            lost = [n for n in other.get("names", []) if n in names]
            other["names"] = kept
            state.write_json(_record_path(paths, other["id"]), other)
            for n in lost:
                events.emit(paths, "image", "untag", other["id"], {"name": n})


def init(paths, directory, name=None):
    """`bocker init`: copy a directory tree into a new image."""
    if not os.path.isdir(directory):
        raise NotFound(f"No directory named '{directory}' exists")
    source = os.path.abspath(directory)
    return create(paths, source, lambda rootfs: store.copy_tree(source, rootfs), name)


def replace_rootfs(paths, image_id, snapshot_of, source):
    """Replace an image's content with a snapshot, keeping its ID.

    The new content is snapshotted beside the old (rootfs.new) and swapped
    in by two renames, under the images' lock; a replace cut short at any
    point is finished by the next one or by prune_leftovers
    (_finish_replace), so the image always has a whole rootfs."""
    record = load(paths, image_id)
    target = rootfs(paths, image_id)
    size = store.tree_size(snapshot_of)  # outside the lock: it walks the whole tree
    with locked(paths):
        _finish_replace(paths, image_id)
        faults.point("images.replace_rootfs.snapshot")
        store.snapshot(snapshot_of, target + ".new")
        try:
            faults.point("images.replace_rootfs.swap")
            os.rename(target, target + ".old")
            os.rename(target + ".new", target)
            faults.point("images.replace_rootfs.write_record")
            record.update(source=source, created=time.time(), size=size)
            _forget_registry(record)
            state.write_json(_record_path(paths, image_id), record)
        finally:
            _finish_replace(paths, image_id)


def _finish_replace(paths, image_id):
    """Finish a replace_rootfs cut short (call holding the images' lock):
    a whole new snapshot replaces the old if the swap had begun, else it is
    dropped; the old one is deleted once replaced."""
    target = rootfs(paths, image_id)
    fresh, old = target + ".new", target + ".old"
    if not os.path.lexists(target) and os.path.lexists(fresh):
        os.rename(fresh, target)  # between the two renames: roll forward
    store.delete(fresh)  # never swapped in: the old content stands
    if os.path.lexists(old):  # swapped: its record may still claim a registry's content
        record = load(paths, image_id)
        if _forget_registry(record):
            state.write_json(_record_path(paths, image_id), record)
        faults.point("images.replace_rootfs.delete")
        store.delete(old)


def _forget_registry(record):
    """Drop what says the content is what a registry served (a later pull
    must not call it up to date); True if there was any."""
    keys = [k for k in ("layers", "config_digest", "digest", "manifest_digest", "repo_digests")
            if k in record]
    for key in keys:
        del record[key]
    return bool(keys)


def remove(paths, ref):
    """Delete an image; returns its ID."""
    image_id = resolve(paths, ref)
    try:
        names_of = list(load(paths, image_id).get("names") or [])
    except BockerError:
        names_of = []
    with locked(paths):  # prune_leftovers never sees it half-removed
        try:
            # of several rmi at once, the one whose unlink takes the record removes it
            os.unlink(_record_path(paths, image_id))
        except FileNotFoundError:
            raise NoSuchImage(ref) from None
        _remove_dir(paths.image(image_id))
    for n in names_of:
        events.emit(paths, "image", "untag", image_id, {"name": n})
    events.emit(paths, "image", "delete", image_id, {"name": names_of[0] if names_of else ""})
    # Drop pulled layers that no image is built on any more.
    if os.path.isdir(paths.layers):
        from bocker.image import layer_store
        with layer_store.locked(paths):
            used = {c for r in list_all(paths) for c in r.get("layers", ())}
            layer_store.prune(paths, used)
    return image_id


def locked(paths):
    """The images directory's lock (a flock on it, no lock file)."""
    # The images directory's lock: image names, an image's rename into
    # place, a rootfs swap and a removal; prune_leftovers holds it to tell
    # a killed command's leftovers from one in progress.  Held for a few
    # renames or one subvolume delete, never for a download or a fill.
    return state.locked(paths.images, directory=True)


def _remove_dir(directory):
    store.remove_dir(directory, "image.json")
