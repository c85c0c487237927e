"""`bocker load` and `bocker save`: images as files, for machines without a registry.

load reads a `docker save` archive (manifest.json) or an OCI image layout
(oci-layout + index.json), either as a directory or a tar (optionally
gzip-compressed).  Layers go through the same layer store and the same
safe extraction as a pull: install.py is the one install both use.

save writes a docker-archive tar (manifest.json, config, the layer tars)
that `docker load`, `podman load` and skopeo accept: one layer per layer
the image has (layerplan.py: a pulled image's chain, a built image's base
layers and steps; one squashed layer for any other), each the difference
of its snapshot over the one below (layerdiff.py).  The layers and the
archive around them are deterministic: the same image saved twice is the
same bytes, so its diff IDs are too.
"""
import datetime
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile

from bocker import faults
from bocker.errors import BockerError, NotFound
from bocker.image import digest, history, images, layerdiff, layerplan
from bocker.image import manifest as _manifest
from bocker.image import platforms, reference
from bocker.image.archive_source import ArchiveError, DirSource, TarSource, clean_name, read_json
from bocker.image.errors import DigestMismatch
from bocker.image.install import Progress, install

_CHUNK = 1 << 20


# ---------------------------------------------------------------- load

def load(paths, path, progress=None, platform=None):
    """Load every image in an archive; returns [(image_id, name or None, up_to_date)].

    Every image's manifest and config is read and checked before the first
    one is installed, so a hostile entry anywhere leaves nothing behind.
    """
    if not os.path.exists(path):
        raise NotFound(f"No file named '{path}' exists")
    source = DirSource(path) if os.path.isdir(path) else TarSource(path)
    try:
        faults.point("archive.plan")
        if source.exists("manifest.json"):
            plans = _plan_docker(source)
        elif source.exists("index.json"):
            plans = _plan_oci(source, platform)
        else:
            raise ArchiveError(f"{path}: neither a docker archive nor an OCI layout")
        return [_install(paths, source, *plan, progress) for plan in plans]
    finally:
        source.close()


def _plan_docker(source):
    """(config, config digest, layer descs, name, verify) per manifest.json entry."""
    manifest, _ = read_json(source, "manifest.json")
    plans = []
    for entry in manifest if isinstance(manifest, list) else []:
        if not isinstance(entry, dict):
            raise ArchiveError("manifest.json: an entry is not an object")
        files = entry.get("Layers") or []
        tags = entry.get("RepoTags") or []
        if not isinstance(files, list) or not isinstance(tags, list) \
                or not all(isinstance(t, str) for t in tags):
            raise ArchiveError("manifest.json: malformed entry")
        files = [clean_name(f) for f in files]
        config_name = clean_name(entry.get("Config"))
        config, raw = read_json(source, config_name)
        config_digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        _manifest.parse_config(raw, len(files), digest.show(config_name))
        diff_ids = config["rootfs"]["diff_ids"]
        descs = [{"digest": d, "file": f} for d, f in zip(diff_ids, files)]
        names = [_name(t) for t in tags]
        _require_files(source, descs)
        plans.append((config, config_digest, descs, next((n for n in names if n), None),
                      False))
    if not plans:
        raise ArchiveError("manifest.json lists no images")
    return plans


def _plan_oci(source, platform):
    """(config, config digest, layer descs, name, verify) per index.json image."""
    index, _ = read_json(source, "index.json")
    want = platforms.parse_platform(platform) if platform else platforms.host_platform()
    entries = index.get("manifests") if isinstance(index, dict) else None
    plans = []
    for desc in entries if isinstance(entries, list) else []:
        ann = (desc.get("annotations") if isinstance(desc, dict) else None) or {}
        if not isinstance(desc, dict) or not isinstance(ann, dict):
            raise ArchiveError("index.json: malformed descriptor")
        if ann.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        name = ann.get("io.containerd.image.name") or ann.get(
            "org.opencontainers.image.ref.name") or ""
        name = _name(name) if isinstance(name, str) else None
        manifest = _blob_json(source, desc)
        if isinstance(manifest, dict) and "manifests" in manifest:
            manifest = _blob_json(source, platforms.select_platform(manifest, want))
        config_desc, descs = _manifest.check_manifest(manifest, "OCI layout")
        config, raw = _blob_json(source, config_desc, raw=True)
        _manifest.parse_config(raw, len(descs), "OCI layout")
        descs = [dict(d, file=_blob_name(d["digest"])) for d in descs]
        _require_files(source, descs)
        plans.append((config, config_desc["digest"], descs, name, True))
    if not plans:
        raise ArchiveError("index.json lists no images")
    return plans


def _require_files(source, descs):
    for desc in descs:
        if not source.exists(desc["file"]):
            raise ArchiveError(f"archive lacks {digest.show(desc['file'])}")


def _blob_name(value):
    """blobs/sha256/<hex>: the only blob path a digest may name."""
    return "blobs/sha256/" + digest.hex_of(value)


def _blob_json(source, desc, raw=False):
    value = desc.get("digest") if isinstance(desc, dict) else None
    doc, data = read_json(source, _blob_name(value))
    digest.verify(value, data)
    return (doc, data) if raw else doc


def _name(text):
    """A loadable name from a RepoTag or annotation, or None if it is only a tag."""
    if not text or ("/" not in text and ":" not in text):
        return None
    try:
        ref = reference.parse(text)
    except BockerError:
        return None
    return ref.familiar() if ref.tag and not ref.digest else None


def _install(paths, source, config, config_digest, descs, name, verify, progress):
    """Install one planned image from the archive: (image ID, name, up to date)."""
    def fetch(i, desc, dest):
        # Copy the layer out of the archive; OCI blobs are checked against
        # their digest (docker archives only carry diff IDs, which
        # layer_store.add checks after decompressing).
        h = hashlib.sha256()
        with source.open(desc["file"]) as src, open(dest, "wb") as out:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)
        if verify and "sha256:" + h.hexdigest() != desc["digest"]:
            os.unlink(dest)
            raise DigestMismatch(desc["digest"])

    image_id, up_to_date = install(paths, config, config_digest, descs, fetch,
                                   progress or Progress(), name=name, source="load", extra={})
    return image_id, name, up_to_date


# ---------------------------------------------------------------- save

def save(paths, ref, output):
    """Write image ref as a docker-archive tar to output; returns the image ID."""
    image_id = images.resolve(paths, ref)
    record = images.load(paths, image_id)
    tops = layerplan.snapshots(paths, image_id, layerplan.plan(paths, record))
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        raise NotFound(f"No directory named '{out_dir}' exists")
    tmp = tempfile.mkdtemp(prefix=".bocker-save-", dir=out_dir)
    try:
        layers = _write_layers(tmp, tops)
        diff_ids = [diff_id for _, diff_id, _ in layers]
        created = datetime.datetime.fromtimestamp(record["created"], datetime.timezone.utc)
        created = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        config = {
            "architecture": record.get("architecture") or platforms.host_platform()[1],
            "os": record.get("os") or "linux",
            "created": created,
            "config": record.get("config") or {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": _history(record, image_id, created, len(tops),
                                [i for i, _, _ in layers]),
        }
        if record.get("variant"):
            config["variant"] = record["variant"]
        config_raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_hex = hashlib.sha256(config_raw).hexdigest()
        layer_names = [f"{d[7:]}/layer.tar" for d in diff_ids]
        tags = [n for n in record.get("names", []) if "@" not in n]
        manifest = [{"Config": f"{config_hex}.json", "RepoTags": tags, "Layers": layer_names}]
        repositories = {}
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = diff_ids[-1][7:]
        partial = os.path.join(tmp, "out.tar")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tf:
            _add_bytes(tf, f"{config_hex}.json", config_raw)
            done = set()
            for _, diff_id, path in layers:
                if diff_id in done:
                    continue  # two equal layers: one file, named twice in the manifest
                done.add(diff_id)
                _add_dir(tf, diff_id[7:])
                _add_file(tf, f"{diff_id[7:]}/layer.tar", path)
                _add_bytes(tf, f"{diff_id[7:]}/VERSION", b"1.0")
            _add_bytes(tf, "manifest.json", json.dumps(manifest).encode())
            _add_bytes(tf, "repositories", json.dumps(repositories).encode())
        os.rename(partial, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return image_id


def _write_layers(tmp, tops):
    """Each present snapshot's layer over the present one below it, as
    tmp/<i>.tar: [(i, diff ID, path)].  A snapshot that is gone (None)
    has its changes in the next layer written."""
    out, below = [], None
    for i, top in enumerate(tops):
        if top is None:
            continue
        path = os.path.join(tmp, f"{i}.tar")
        with open(path, "wb") as f:
            writer = _HashingWriter(f)
            layerdiff.write(writer, top, below)
        out.append((i, "sha256:" + writer.hash.hexdigest(), path))
        below = top
    return out


def _history(record, image_id, created, planned, written):
    """The config's history: the image's own entries when their layer
    steps pair with the planned layers (a gone layer's step then marked
    empty: its changes are in the next layer), else those entries as
    empty steps and one entry per layer written, so a loader that pairs
    them (Docker refuses more layer steps than layers) sees as many."""
    entries = history.from_config({"history": record.get("history")})
    made = [i for i, e in enumerate(entries) if not e.get("empty_layer")]
    if len(made) == planned:
        for n, i in enumerate(made):
            if n not in written:
                entries[i]["empty_layer"] = True
        return entries
    out = [dict(e, empty_layer=True) for e in entries]
    for n in range(len(written)):
        suffix = f" (layer {n + 1} of {len(written)})" if len(written) > 1 else ""
        out.append({"created": created, "created_by": f"bocker save {image_id}{suffix}"})
    return out


class _HashingWriter:
    """A binary writer passing writes to f and hashing them (the diff ID)."""

    def __init__(self, f):
        self.f, self.hash = f, hashlib.sha256()

    def write(self, data):
        """Write data to f, hashing it."""
        self.hash.update(data)
        return self.f.write(data)


def _add_bytes(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tf.addfile(info, io.BytesIO(data))


def _add_file(tf, name, path):
    # mtime 0 and no owner names, as every other member: the same image
    # saved twice is the same archive
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    with open(path, "rb") as f:
        info.size = os.fstat(f.fileno()).st_size
        tf.addfile(info, f)


def _add_dir(tf, name):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tf.addfile(info)
