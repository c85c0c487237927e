"""Which layers an image has: the snapshots `bocker save` diffs one over
the next, and their sizes for `bocker history`.

bocker keeps rootfs snapshots, not layer tars.  A pulled or loaded image
names its layer chain (record["layers"]: chain IDs, each a snapshot of
everything up to that layer, layer_store.py); a built one (record["build"],
docs/architecture.md's Builds) its base's layers (a chain, or the FROM entry of a
base made here) then one build-cache entry per step that changed the
filesystem (<root>/buildcache/<key>/rootfs); any other image (init,
import, commit) is one layer.  Layer i is then the difference of snapshot
i over snapshot i-1.  The last snapshot is always the image's own rootfs,
so what is saved is the image whatever the store holds; a snapshot that
is gone (a pruned cache entry) merges its layer into the next one.

The records are ours but the keys in them become paths: only a
well-formed chain ID or a 64-hex key does.
"""
import os

from bocker import state
from bocker.errors import BockerError
from bocker.image import digest, images, layer_store

MAX_LAYERS = 1000  # Docker's limit is 125; this only bounds a record gone wrong


class Layer:
    """One planned layer: rootfs (its snapshot, None if gone), size (bytes
    the record says it adds, None if unknown)."""

    __slots__ = ("rootfs", "size")

    def __init__(self, rootfs, size=None):
        self.rootfs, self.size = rootfs, size


def plan(paths, record):
    """[Layer] of an image record, bottom up; [] for an image of neither a
    chain nor a build (one squashed layer).  The top is not the image's
    rootfs yet: snapshots(plan) puts it there."""
    build = record.get("build")
    if isinstance(build, dict) and record.get("source") == "build":
        # (a commit into a built image replaces its rootfs and its source,
        # not this record: then its steps are not what it holds)
        return _built(paths, build)
    return _chain(paths, record.get("layers"))


def snapshots(paths, image_id, layers):
    """The rootfs of each planned layer, the image's own rootfs on top:
    None where one is gone.  One entry (the image's rootfs) for no plan."""
    tops = [layer.rootfs if layer.rootfs and os.path.isdir(layer.rootfs) else None
            for layer in layers] or [None]
    tops[-1] = images.rootfs(paths, image_id)
    return tops


def sizes(paths, record):
    """The planned layers' sizes in order (None for an unknown one), or
    None if the image has no layer plan."""
    layers = plan(paths, record)
    return [layer.size for layer in layers] if layers else None


def _chain(paths, chains):
    if not isinstance(chains, list) or not chains or len(chains) > MAX_LAYERS:
        return []
    out = []
    for chain in chains:
        try:
            directory = os.path.dirname(layer_store.rootfs(paths, chain))
        except BockerError:  # a malformed chain ID (BadDigest): not a path
            out.append(Layer(None))
            continue
        info = _read(os.path.join(directory, "layer.json"))
        size = info.get("size") if isinstance(info, dict) else None
        out.append(Layer(os.path.join(directory, "rootfs"),
                         size if isinstance(size, int) and size >= 0 else None))
    return out


def _built(paths, build):
    base = build.get("base") if isinstance(build.get("base"), dict) else {}
    out = _chain(paths, base.get("layers")) if "layers" in base else []
    base_entry = base.get("entry")
    if isinstance(base_entry, str):
        out.append(_entry(paths, base_entry))
    keys = build.get("layers")
    for key in keys[:MAX_LAYERS] if isinstance(keys, list) else []:
        if key == base_entry:
            continue
        step = _step(paths, key)
        instruction = step.get("instruction") if isinstance(step, dict) else None
        if isinstance(instruction, str) and instruction.split(None, 1)[:1] == ["FROM"]:
            continue  # the base's own snapshot: its layers are base's
        out.append(_entry(paths, key, step))
    return out


def _entry_dir(paths, key):
    return os.path.join(paths.buildcache, key) if digest.is_hex(key) else None


def _step(paths, key):
    directory = _entry_dir(paths, key)
    return _read(os.path.join(directory, "step.json")) if directory else None


def _entry(paths, key, step=None):
    directory = _entry_dir(paths, key)
    if directory is None:
        return Layer(None)
    step = step if step is not None else _step(paths, key)
    size = step.get("size") if isinstance(step, dict) else None
    return Layer(os.path.join(directory, "rootfs"),
                 size if isinstance(size, int) and size >= 0 else None)


def _read(path):
    # our own small records; a missing or broken one is a layer we do not know
    try:
        if os.path.getsize(path) > (1 << 20):
            return None
        return state.read_json(path)
    except (OSError, ValueError):
        return None
