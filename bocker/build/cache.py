"""The build cache: one entry per step under <root>/buildcache/<key>/.

An entry is step.json ({key, parent, instruction, created, config,
history, size}) and, for a step that changed the filesystem, rootfs: a
read-only subvolume.  A step's key is the sha256 of its parent's key,
its keyword, its expanded arguments, its flags and what else decides its
result (a COPY's source digest, a RUN's build args and shell): two steps
of the same key make the same result, so one is reused for the other.

Entries are made in buildcache/.tmp-<pid>-<key> and renamed whole into
place: of two builds racing to store a key one rename wins and the
other's copy is removed; a killed build's temporary is removed by prune.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import time

from bocker import state
from bocker.kernel import store

TMP = ".tmp-"
RECORD = "step.json"
MAX_RECORD = 4 << 20  # a step.json is ours, but the root may be shared: bound the read


def step_key(parent, keyword, args, flags=(), extra=None):
    """The cache key (64 hex) of a step: sha256 of the JSON of [parent key,
    keyword, expanded args, flags as [name, value] pairs, extra]."""
    data = [parent or "", keyword, args, [list(f) for f in flags], extra]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def is_key(text):
    """True if text is a cache key (64 lower-case hex)."""
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def entry_dir(paths, key):
    """buildcache/<key>; only a well-formed key becomes a path."""
    if not is_key(key):
        raise ValueError(f"invalid cache key {ascii(key)[:80]}")
    return os.path.join(paths.buildcache, key)


def rootfs(paths, key):
    """The entry's rootfs subvolume path (it may not exist: a config-only step)."""
    return os.path.join(entry_dir(paths, key), "rootfs")


def lookup(paths, key):
    """The step record of key, or None if there is none (or it is not
    whole: a corrupt or foreign step.json counts as a miss)."""
    path = os.path.join(entry_dir(paths, key), RECORD)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECORD + 1)
        record = json.loads(data)
    except (OSError, ValueError):
        return None
    if len(data) > MAX_RECORD or not isinstance(record, dict) or record.get("key") != key \
            or not isinstance(record.get("config"), dict):
        return None
    if record.get("has_rootfs") and not store.is_subvolume(rootfs(paths, key)):
        return None
    return record


def store_entry(paths, key, record, rootfs_from=None, fill=None, replace=False, parent_total=0,
                total=None):
    """Store the entry of key: record (step.json's fields but key and
    created) and, with rootfs_from, a read-only snapshot of that subvolume;
    with fill, a writable snapshot of rootfs_from (or a new empty
    subvolume if None) is made, fill(path) changes it, and it is then made
    read-only.  Returns the stored record (another build's if it stored the
    same key first; with replace, --no-cache's, this one replaces it).
    The record's total is the rootfs's size, its size what it adds over
    parent_total (the parent filesystem's total: a layer's size).  Walking
    a big tree costs tens of milliseconds a step, so a fill that returns
    the bytes it wrote, or a snapshot whose total is given (an image's
    recorded size), is taken at its word."""
    os.makedirs(paths.buildcache, exist_ok=True)
    tmp = os.path.join(paths.buildcache, f"{TMP}{os.getpid()}-{key}")
    os.mkdir(tmp, 0o700)
    try:
        has_rootfs = rootfs_from is not None or fill is not None
        target = os.path.join(tmp, "rootfs")
        if fill is not None:
            if rootfs_from is None:
                store.create(target)
            else:
                store.snapshot(rootfs_from, target)
            added = fill(target)
            total = parent_total + added if isinstance(added, int) else store.tree_size(target)
            store.set_readonly(target)
        elif rootfs_from is not None:
            store.snapshot(rootfs_from, target, readonly=True)
            if not isinstance(total, int):
                total = store.tree_size(target)
        else:
            total = parent_total
        full = {**record, "key": key, "created": time.time(), "has_rootfs": has_rootfs,
                "total": total, "size": max(0, total - parent_total)}
        state.write_json(os.path.join(tmp, RECORD), full)
        final = entry_dir(paths, key)
        if replace and os.path.isdir(final):
            old = f"{tmp}.old"
            os.rename(final, old)
            _remove(old)
        try:
            os.rename(tmp, final)
        except OSError:  # another build stored it first: theirs stands
            _remove(tmp)
            return lookup(paths, key) or full
    except BaseException:
        _remove(tmp)
        raise
    return full


def _remove(directory):
    """Remove an entry directory (its rootfs subvolume, read-only or not)."""
    store.remove_dir(directory, RECORD)


def keys(paths):
    """Every stored entry's key."""
    try:
        names = os.listdir(paths.buildcache)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if is_key(n))


def chain(paths, key):
    """The keys from key back to its first step (key first), through the
    entries' parent links; stops at a missing entry."""
    out, seen = [], set()
    while key and is_key(key) and key not in seen:
        seen.add(key)
        record = lookup(paths, key)
        if record is None:
            break
        out.append(key)
        key = record.get("parent")
    return out


def usage(paths, keep):
    """system df's Build Cache row: (entries, active, bytes, reclaimable
    bytes); active: on the chain of a key in keep (used_keys), which
    prune keeps; bytes: what each entry adds over its parent."""
    active = set()
    for key in keep:
        active.update(chain(paths, key))
    count = active_count = size = free = 0
    for key in keys(paths):
        record = lookup(paths, key)
        if record is None:
            continue
        adds = record.get("size") if isinstance(record.get("size"), int) else 0
        count, size = count + 1, size + adds
        if key in active:
            active_count += 1
        else:
            free += adds
    return count, active_count, size, free


@contextlib.contextmanager
def building(paths):
    """Held by a build from its first lookup to its image's commit (a
    shared flock on buildcache/): a prune meanwhile would take the entries
    it made but no image uses yet."""
    os.makedirs(paths.buildcache, exist_ok=True)
    fd = os.open(paths.buildcache, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def prune(paths, keep=(), everything=False):
    """Remove the entries not in keep (the keys built images use, and
    their chains), or every entry with everything; and the temporaries of
    builds that are gone.  Returns (removed keys, bytes reclaimed).  While
    a build runs nothing is removed (its entries are no image's yet)."""
    try:
        fd = os.open(paths.buildcache, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return [], 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return [], 0
        return _prune(paths, keep, everything)
    finally:
        os.close(fd)


def _prune(paths, keep, everything):
    from bocker.image.images import _pid_alive

    kept = set()
    if not everything:
        for key in keep:
            kept.update(chain(paths, key))
    removed, size = [], 0
    try:
        names = sorted(os.listdir(paths.buildcache))
    except FileNotFoundError:
        return [], 0
    for name in names:
        path = os.path.join(paths.buildcache, name)
        if name.startswith(TMP):
            if not _pid_alive(name[len(TMP):].split("-")[0]):
                _remove(path)
            continue
        if not is_key(name) or name in kept:
            continue
        record = lookup(paths, name)
        _remove(path)
        removed.append(name)
        size += (record or {}).get("size", 0) or 0
    return removed, size


def used_keys(image_records):
    """The cache keys built images hold: their final keys (the chain of
    each is kept by prune)."""
    out = set()
    for r in image_records:
        build = r.get("build")
        if isinstance(build, dict) and is_key(build.get("key")):
            out.add(build["key"])
            base = build.get("base")
            if isinstance(base, dict) and is_key(base.get("entry")):
                out.add(base["entry"])
    return out
