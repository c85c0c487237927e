"""The volumes of a root: created, loaded, listed and removed.

<root>/volumes/<name>/ holds _data (a btrfs subvolume: what is mounted)
and volume.json (Docker's volume inspect fields, less Mountpoint, which
is always derived from the root).  A create claims the name with mkdir
and makes the rest under a flock on that directory, so two runs that
both create `pgdata` end with one volume, made once; a directory without
volume.json that nobody holds locked is a create cut short (finished by
the next create of that name, removed by prune_leftovers).

A removal holds the root's lock exclusively: every container create holds
it shared from its mkdir until its record (which names its volumes) is
saved, so a volume is never removed under a container being created.
"""
import contextlib
import errno
import fcntl
import os
import time

from bocker import state
from bocker.errors import BockerError, InvalidArgument, NotFound
from bocker.kernel import store
from bocker.volume import names

MAX_LABELS = 256
MAX_LABEL_BYTES = 4096


class NoSuchVolume(NotFound):
    def __init__(self, name):
        super().__init__(f"No such volume: {name}")


class VolumeInUse(BockerError):
    def __init__(self, name, cids):
        super().__init__(f"volume {name} is in use by container(s) {', '.join(cids)}: "
                         f"remove them first")


def data_dir(paths, name):
    """The directory mounted for volume name (its _data subvolume)."""
    return os.path.join(paths.volume(name), "_data")


def _meta(paths, name):
    return os.path.join(paths.volume(name), "volume.json")


def _now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_labels(labels):
    """labels as a dict str -> str, bounded; InvalidArgument otherwise."""
    labels = dict(labels or {})
    if len(labels) > MAX_LABELS or not all(
            isinstance(k, str) and isinstance(v, str) and k and
            len(k.encode()) + len(v.encode()) <= MAX_LABEL_BYTES for k, v in labels.items()):
        raise InvalidArgument(f"invalid volume labels: at most {MAX_LABELS} KEY=VALUE")
    return labels


@contextlib.contextmanager
def _claimed(paths, name):
    """The volume's directory, made if missing, held under its flock
    (exclusive); retried if an rm removed it between our mkdir and flock."""
    vdir = paths.volume(name)
    os.makedirs(paths.volumes, exist_ok=True)
    for _ in range(100):
        with contextlib.suppress(FileExistsError):
            os.mkdir(vdir, 0o701)
        try:
            fd = os.open(vdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                here = os.stat(vdir, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we waited: claim it again
            mine = os.fstat(fd)
            if (here.st_dev, here.st_ino) != (mine.st_dev, mine.st_ino):
                continue
            yield vdir
            return
        finally:
            os.close(fd)
    raise BockerError(f"volume {name}: could not claim its directory")


def create(paths, name=None, labels=None, options=None, anonymous=False):
    """Volume name (a new anonymous name if None), made if missing;
    returns (its inspect dict, True if this call made it).  An existing
    volume is returned as it is (Docker's `volume create` of an existing
    name succeeds)."""
    if options:
        raise InvalidArgument("volume options are not supported: bocker's local driver "
                              "makes btrfs subvolumes only")
    labels = check_labels(labels)
    if name is None:
        name, anonymous = names.anonymous(), True
    names.check(name)
    if anonymous:
        labels[names.ANONYMOUS_LABEL] = ""
    with _claimed(paths, name) as vdir:
        meta = os.path.join(vdir, "volume.json")
        if os.path.exists(meta):
            return load(paths, name), False
        data = os.path.join(vdir, "_data")
        if not store.is_subvolume(data):  # (a create cut short may have made it)
            store.create(data)
        record = {"Name": name, "Driver": "local", "CreatedAt": _now_rfc3339(),
                  "Labels": labels, "Options": {}, "Scope": "local"}
        state.write_json(meta, record)
    _emit(paths, "create", name)
    return view(paths, record), True


def view(paths, record):
    """Docker's inspect shape of a stored volume record."""
    name = record["Name"]
    return {"CreatedAt": record.get("CreatedAt", ""), "Driver": "local",
            "Labels": dict(record.get("Labels") or {}), "Mountpoint": data_dir(paths, name),
            "Name": name, "Options": dict(record.get("Options") or {}), "Scope": "local"}


def load(paths, name):
    """Volume name's inspect dict; NoSuchVolume if there is none."""
    if not names.is_name(name):
        raise NoSuchVolume(name)
    try:
        record = state.read_json(_meta(paths, name))
    except (FileNotFoundError, NotADirectoryError):
        raise NoSuchVolume(name) from None
    except ValueError:
        raise BockerError(f"volume {name}: volume.json is corrupt") from None
    if not isinstance(record, dict) or record.get("Name") != name:
        raise BockerError(f"volume {name}: volume.json is corrupt")
    return view(paths, record)


def list_all(paths):
    """Every volume's inspect dict, by name (half-made ones skipped)."""
    try:
        entries = sorted(os.listdir(paths.volumes))
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        with contextlib.suppress(NoSuchVolume, BockerError):
            out.append(load(paths, entry))
    return out


def is_anonymous(volume):
    """True for a volume made for one container (-v /path, image Volumes)."""
    return names.ANONYMOUS_LABEL in (volume.get("Labels") or {})


def remove(paths, name, force=False, ignore=()):
    """Remove volume name unless a container (but those in ignore) uses
    it; returns the name, or None if it did not exist and force is set
    (Docker's -f)."""
    from bocker.volume import usage

    with state.locked(paths.lock):  # no container create in progress (module doc)
        try:
            load(paths, name)
        except NoSuchVolume:
            if force:
                return None
            raise
        cids = [c for c in usage.users(paths, name) if c not in ignore]
        if cids:
            raise VolumeInUse(name, cids)
        _delete(paths, name)
    _emit(paths, "destroy", name)
    return name


def _delete(paths, name, only_half_made=False):
    with _claimed(paths, name) as vdir:
        if only_half_made and os.path.exists(os.path.join(vdir, "volume.json")):
            return False  # a create finished it meanwhile
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(vdir, "volume.json"))  # first: never listed half-gone
        store.delete(os.path.join(vdir, "_data"))
        for entry in os.listdir(vdir):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(vdir, entry))
        os.rmdir(vdir)
    return True


def discard(paths, name, cid):
    """The undo of a create (of container cid) that failed: the volume it
    made goes, unless another container's record names it by now (a run
    of the same name at once found it made and uses it).  Runs after the
    create let go of the root's lock, so remove() takes it for real."""
    with contextlib.suppress(BockerError, OSError):
        remove(paths, name, ignore=(cid,))


def fill(paths, name, filler):
    """Call filler(data_dir) if volume name is empty, under its flock (two
    containers created at once copy into it once); True if it was called."""
    with _claimed(paths, name) as vdir:
        data = os.path.join(vdir, "_data")
        if os.listdir(data):
            return False
        filler(data)
        return True


def remove_anonymous(paths, mounts):
    """Remove the anonymous volumes among a removed container's Mounts
    (rm -v, run --rm) that no other container uses; named ones stay.
    Never fails: a volume that cannot go is left for `volume prune`."""
    for m in mounts or ():
        name = m.get("Name") if isinstance(m, dict) and m.get("Type") == "volume" else None
        if not names.is_name(name):
            continue
        try:
            if is_anonymous(load(paths, name)):
                remove(paths, name)
        except (BockerError, OSError):
            continue


def prune(paths, everything=False, keep=lambda volume: False):
    """Remove unused volumes: anonymous ones only, or every one with
    everything (Docker 23+'s `volume prune` and `-a`); keep(volume) True
    spares one (--filter).  Returns ([names], bytes reclaimed)."""
    from bocker.volume import usage

    removed, size = [], 0
    with state.locked(paths.lock):
        used = usage.all_used(paths)
        for volume in list_all(paths):
            name = volume["Name"]
            if name in used or keep(volume) or not (everything or is_anonymous(volume)):
                continue
            bytes_ = store.tree_size(volume["Mountpoint"])
            _delete(paths, name)
            removed.append(name)
            size += bytes_
    for name in removed:
        _emit(paths, "destroy", name)
    return removed, size


def prune_leftovers(paths):
    """Volume directories without volume.json that no create holds: a
    create or removal cut short.  Returns lines naming what was removed."""
    out = []
    try:
        entries = sorted(os.listdir(paths.volumes))
    except FileNotFoundError:
        return out
    for entry in entries:
        vdir = os.path.join(paths.volumes, entry)
        if not names.is_name(entry) or os.path.exists(os.path.join(vdir, "volume.json")):
            continue
        try:
            fd = os.open(vdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue  # a create holds it: in progress, not left over
            raise
        os.close(fd)
        if _delete(paths, entry, only_half_made=True):
            out.append(f"volume directory {entry}")
    return out


def _emit(paths, action, name):
    # events.emit never fails a command (a failed write is a warning)
    from bocker import events

    events.emit(paths, "volume", action, name, {"driver": "local"})
