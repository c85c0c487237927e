"""`bocker pull`: resolve, download, verify, apply layers, create the image.

Every blob a pull still needs is downloaded into a temp directory under the
root and verified before the first layer is applied, so a corrupt blob
leaves nothing behind: no layer subvolume, no image.
"""
import json
import os
import shutil
import tempfile
from typing import NamedTuple

from bocker import trace
from bocker.errors import BockerError
from bocker.image import digest, images, layers, reference, registry
from bocker.kernel import store

LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
}


class PullResult(NamedTuple):
    image_id: str
    up_to_date: bool
    reference: reference.Reference
    digest: str


class Progress:
    """What a pull reports; the CLI draws it.  These defaults say nothing."""

    def layer(self, digest, size, status):
        """A layer's first word: 'Downloading', 'Already exists'."""

    def advance(self, digest, n):
        """n more bytes of digest arrived (n None: the download restarted)."""

    def done(self, digest, status):
        """A layer finished a step: 'Verified', 'Extracted'."""


def pull(paths, name, tag=None, *, platform=None, insecure_registries=(), progress=None):
    """Pull NAME[:TAG|@DIGEST] (or NAME TAG) into a new image; a PullResult."""
    progress = progress or Progress()
    ref = reference.parse(name, tag)
    want = registry.parse_platform(platform) if platform else None
    insecure = ref.registry in insecure_registries or ref.api_host in insecure_registries
    client = registry.Client(ref.registry, insecure=insecure)
    manifest, manifest_digest, top = client.resolve(ref.repository, ref.reference, want)
    config_desc, descs = _check_manifest(manifest, ref)
    config_raw = client.blob_bytes(ref.repository, config_desc["digest"])
    config = _parse_config(config_raw, len(descs), ref)
    image_name = ref.familiar() if ref.tag and not ref.digest else None

    existing = _find(paths, config_desc["digest"], image_name)
    if existing:
        return PullResult(existing, True, ref, top)

    def fetch(i, desc, dest):
        with trace.span("blob download", digest=desc["digest"], size=desc.get("size")):
            client.download(ref.repository, desc["digest"], dest, desc.get("size"),
                            progress=lambda n: progress.advance(desc["digest"], n))

    image_id = install(paths, config, config_desc["digest"], descs, fetch, progress,
                       name=image_name, source=f"{ref.name}@{top}",
                       extra={"digest": top, "manifest_digest": manifest_digest,
                              "repo_digests": [f"{ref.name}@{top}"]})
    return PullResult(image_id, False, ref, top)


def _check_manifest(manifest, ref):
    try:
        config_desc = manifest["config"]
        descs = manifest["layers"]
        if not isinstance(descs, list):
            raise TypeError
        for desc in [config_desc, *descs]:
            if not isinstance(desc["digest"], str):
                raise TypeError
    except (KeyError, TypeError):
        raise registry.RegistryError(f"{ref}: malformed manifest") from None
    # Before any of them names a URL, a file or a store path.
    try:
        digest.check(config_desc["digest"], "config digest")
        for desc in descs:
            digest.check(desc["digest"], "layer digest")
    except digest.BadDigest as e:
        raise digest.BadDigest(f"{ref}: manifest: {e}") from None
    for desc in descs:
        if desc.get("mediaType") and desc["mediaType"] not in LAYER_TYPES:
            raise registry.RegistryError(
                f"{ref}: unsupported layer type {desc.get('mediaType')}")
    return config_desc, descs


def _parse_config(raw, n_layers, where):
    try:
        config = json.loads(raw)
        diff_ids = config["rootfs"]["diff_ids"]
        if not isinstance(config, dict) or not isinstance(diff_ids, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BockerError(f"{where}: malformed image config") from None
    try:
        for diff_id in diff_ids:
            digest.check(diff_id, "diff_id")
    except digest.BadDigest as e:
        raise digest.BadDigest(f"{where}: image config: {e}") from None
    if len(diff_ids) != n_layers:
        raise BockerError(f"{where}: config lists {len(diff_ids)} layers, "
                          f"manifest {n_layers}")
    return config


def _find(paths, config_digest, name):
    """An image already holding this config under this name, if any."""
    for record in images.list_all(paths):
        if record.get("config_digest") == config_digest and (
                name is None or name in record.get("names", ())):
            return record["id"]
    return None


def install(paths, config, config_digest, descs, fetch, progress, *, name=None,
            source=None, extra=None):
    """Store the layers an image needs and create the image.

    fetch(i, desc, dest) puts layer i's blob (verified) into the file dest;
    it is called only for layers not yet stored, all before any is applied.
    """
    store.require_btrfs(paths.root)
    diff_ids = config["rootfs"]["diff_ids"]
    chains = layers.chain_ids(diff_ids)
    tmp_root = os.path.join(paths.root, "tmp")
    os.makedirs(tmp_root, mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="pull-", dir=tmp_root)
    os.makedirs(paths.layers, exist_ok=True)
    try:
        with layers.pinned(paths, chains):
            return _install(paths, config, config_digest, descs, fetch, progress, chains,
                            diff_ids, tmp, name, source, extra)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(paths, config, config_digest, descs, fetch, progress, chains, diff_ids, tmp,
             name, source, extra):
    """install()'s steps, with the layers pinned and a temp directory."""
    missing = [i for i, chain in enumerate(chains) if not layers.exists(paths, chain)]
    for i, desc in enumerate(descs):
        progress.layer(desc["digest"], desc.get("size"),
                       "Downloading" if i in missing else "Already exists")
    for i in missing:
        fetch(i, descs[i], os.path.join(tmp, str(i)))
        progress.done(descs[i]["digest"], "Verified")
    for i in missing:
        if layers.exists(paths, chains[i]):
            continue  # stored meanwhile by a concurrent pull
        with open(os.path.join(tmp, str(i)), "rb") as blob:
            layers.add(paths, chains[i - 1] if i else None, chains[i], diff_ids[i], blob,
                       info={"digest": descs[i]["digest"],
                             "media_type": descs[i].get("mediaType")})
        os.unlink(os.path.join(tmp, str(i)))
        progress.done(descs[i]["digest"], "Extracted")
    record = {"layers": chains, "config_digest": config_digest,
              "os": config.get("os"), "architecture": config.get("architecture"),
              **(extra or {})}
    if config.get("variant"):
        record["variant"] = config["variant"]
    # No layers at all (a scratch image): an empty rootfs.
    fill = None if chains else (lambda rootfs: None)
    return images.create(paths, source, fill, name=name,
                         config=config.get("config") or {},
                         snapshot_of=layers.rootfs(paths, chains[-1]) if chains else None,
                         extra=record)
