"""From (config, ordered layers) to an image: the one install pull and load share.

The caller (pull.py from a registry, archive.py from a file) has checked
the manifest and config (manifest.py) and supplies fetch(i, desc, dest),
which puts layer i's blob, verified, into a file.  install pins the image's
chain of layers, fetches every layer not yet stored into a temp directory
under the root before applying the first (so a corrupt blob leaves no
layer and no image), applies each onto its parent (layer_store.add, which
checks the diff ID), and snapshots the top layer as the new image.
"""
import os
import shutil
import tempfile

from bocker import faults
from bocker.image import images, layer_store
from bocker.kernel import store


TMP_PREFIX = "pull-"


class Progress:
    """What an install reports; the CLI draws it.  These defaults say nothing."""

    def layer(self, digest, size, status):
        """A layer's first word: 'Downloading', 'Already exists'."""

    def advance(self, digest, n):
        """n more bytes of digest arrived (n None: the download restarted)."""

    def done(self, digest, status):
        """A layer finished a step: 'Verified', 'Extracted'."""


def find_existing(paths, config_digest, name):
    """The ID of an image already holding this config under this name, or None."""
    for record in images.list_all(paths):
        if record.get("config_digest") == config_digest and (
                name is None or name in record.get("names", ())):
            return record["id"]
    return None


def install(paths, config, config_digest, descs, fetch, progress, *, name=None,
            source=None, extra=None):
    """Store the layers an image needs and create the image: (image ID, up to date).

    config is the checked image config, descs the layers' descriptors in
    order.  An image already holding config_digest under name is up to
    date: its ID is returned and nothing is fetched.  Else fetch(i, desc,
    dest) puts layer i's blob (verified) into the file dest; it is called
    only for layers not yet stored, all before any is applied.  extra: more
    fields for image.json (a pull's digests).
    """
    existing = find_existing(paths, config_digest, name)
    if existing:
        return existing, True
    store.require_btrfs(paths.root)
    diff_ids = config["rootfs"]["diff_ids"]
    chains = layer_store.chain_ids(diff_ids)
    tmp_root = os.path.join(paths.root, "tmp")
    os.makedirs(tmp_root, mode=0o700, exist_ok=True)
    # named by our PID: what a killed install leaves, prune_leftovers removes
    tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=tmp_root)
    os.makedirs(paths.layers, exist_ok=True)
    try:
        faults.point("install.pin")
        with layer_store.pinned(paths, chains):
            missing = _fetch_missing(paths, descs, fetch, progress, chains, tmp)
            _apply(paths, missing, descs, progress, chains, diff_ids, tmp)
            return _create_image(paths, config, config_digest, chains, name, source,
                                 extra), False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch_missing(paths, descs, fetch, progress, chains, tmp):
    """Every layer not stored yet into tmp/<i>, verified; returns their indexes."""
    faults.point("install.fetch_missing")
    missing = [i for i, chain in enumerate(chains) if not layer_store.exists(paths, chain)]
    for i, desc in enumerate(descs):
        progress.layer(desc["digest"], desc.get("size"),
                       "Downloading" if i in missing else "Already exists")
    for i in missing:
        fetch(i, descs[i], os.path.join(tmp, str(i)))
        progress.done(descs[i]["digest"], "Verified")
    return missing


def _apply(paths, missing, descs, progress, chains, diff_ids, tmp):
    """Apply each fetched layer (indexes in missing) onto its parent, bottom up."""
    faults.point("install.apply")
    for i in missing:
        blob_path = os.path.join(tmp, str(i))
        if layer_store.exists(paths, chains[i]):
            continue  # stored meanwhile by a concurrent pull
        with open(blob_path, "rb") as blob:
            layer_store.add(paths, chains[i - 1] if i else None, chains[i], diff_ids[i], blob,
                            info={"digest": descs[i]["digest"],
                                  "media_type": descs[i].get("mediaType")})
        os.unlink(blob_path)
        progress.done(descs[i]["digest"], "Extracted")


def _create_image(paths, config, config_digest, chains, name, source, extra):
    """The new image: a snapshot of the top layer, its record naming the chain."""
    faults.point("install.create_image")
    record = {"layers": chains, "config_digest": config_digest,
              "os": config.get("os"), "architecture": config.get("architecture"),
              **(extra or {})}
    if config.get("variant"):
        record["variant"] = config["variant"]
    from bocker.image import history

    record["history"] = history.from_config(config)  # validated, bounded: `bocker history`
    # No layers at all (a scratch image): an empty rootfs.
    fill = None if chains else (lambda rootfs: None)
    return images.create(paths, source, fill, name=name,
                         config=config.get("config") or {},
                         snapshot_of=layer_store.rootfs(paths, chains[-1]) if chains else None,
                         extra=record)


def prune_leftovers(paths):
    """The download directories of installs whose process is gone (under
    <root>/tmp); returns their names."""
    from bocker.image.images import _pid_alive

    tmp_root = os.path.join(paths.root, "tmp")
    try:
        entries = sorted(os.listdir(tmp_root))
    except FileNotFoundError:
        return []
    gone = []
    for entry in entries:
        if entry.startswith(TMP_PREFIX) and not _pid_alive(entry[len(TMP_PREFIX):].split("-")[0]):
            shutil.rmtree(os.path.join(tmp_root, entry), ignore_errors=True)
            gone.append(entry)
    return gone
