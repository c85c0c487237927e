"""`bocker load` and `bocker save`: images as files, for machines without a registry.

load reads a `docker save` archive (manifest.json) or an OCI image layout
(oci-layout + index.json), either as a directory or a tar (optionally
gzip-compressed).  Layers go through the same layer store and the same
safe extraction as a pull: install.py is the one install both use.

save writes a docker-archive tar (manifest.json, config, one layer.tar)
that `docker load`, `podman load` and skopeo accept.  The image is written
as one squashed layer: bocker keeps rootfs snapshots, not layer tars.
"""
import datetime
import hashlib
import json
import os
import shutil
import tarfile
import tempfile

from bocker import faults
from bocker.errors import BockerError, NotFound
from bocker.image import digest, images
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

def _tar_filter(info):
    info.uname = info.gname = ""
    return info


def _rootfs_filter(rootfs):
    """Numeric owners only, and xattrs (file capabilities...) as SCHILY.xattr PAX records."""
    def add(info):
        info.uname = info.gname = ""
        path = os.path.join(rootfs, info.name)
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            names = []
        for name in names:
            try:
                value = os.getxattr(path, name, follow_symlinks=False)
            except OSError:
                continue
            info.pax_headers[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
        return info
    return add


def save(paths, ref, output):
    """Write image ref as a docker-archive tar to output; returns the image ID."""
    image_id = images.resolve(paths, ref)
    record = images.load(paths, image_id)
    rootfs = images.rootfs(paths, image_id)
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        raise NotFound(f"No directory named '{out_dir}' exists")
    tmp = tempfile.mkdtemp(prefix=".bocker-save-", dir=out_dir)
    try:
        layer = os.path.join(tmp, "layer.tar")
        with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tf:
            for entry in sorted(os.listdir(rootfs)):
                tf.add(os.path.join(rootfs, entry), arcname=entry,
                       filter=_rootfs_filter(rootfs))
        diff_id = "sha256:" + _file_sha256(layer)
        created = datetime.datetime.fromtimestamp(record["created"], datetime.timezone.utc)
        config = {
            "architecture": record.get("architecture") or platforms.host_platform()[1],
            "os": record.get("os") or "linux",
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "config": record.get("config") or {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "created_by": f"bocker save {image_id}"}],
        }
        if record.get("variant"):
            config["variant"] = record["variant"]
        config_raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_hex = hashlib.sha256(config_raw).hexdigest()
        layer_name = f"{diff_id[7:]}/layer.tar"
        tags = [n for n in record.get("names", []) if "@" not in n]
        manifest = [{"Config": f"{config_hex}.json", "RepoTags": tags,
                     "Layers": [layer_name]}]
        repositories = {}
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = diff_id[7:]
        partial = os.path.join(tmp, "out.tar")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tf:
            _add_bytes(tf, f"{config_hex}.json", config_raw)
            _add_dir(tf, diff_id[7:])
            tf.add(layer, arcname=layer_name, filter=_tar_filter)
            _add_bytes(tf, f"{diff_id[7:]}/VERSION", b"1.0")
            _add_bytes(tf, "manifest.json", json.dumps(manifest).encode())
            _add_bytes(tf, "repositories", json.dumps(repositories).encode())
        os.rename(partial, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return image_id


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _add_bytes(tf, name, data):
    import io
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tf.addfile(info, io.BytesIO(data))


def _add_dir(tf, name):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tf.addfile(info)
