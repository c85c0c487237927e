"""Checks on an image manifest and config from a hostile source (registry or archive).

Both pull and load read a manifest (the config's and the layers'
descriptors) and a config (the layers' diff IDs).  These functions check
their shape, that every digest and diff ID is sha256:<64 hex> (digest.py)
before any of them names a URL, a file or a store path, and that the
manifest and config agree on the number of layers.  Pure: no I/O.
"""
import json

from bocker.errors import BockerError
from bocker.image import digest
from bocker.image.errors import RegistryError

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


def check_manifest(manifest, where):
    """(config descriptor, [layer descriptors]) of a checked image manifest.

    where names the source in messages.  Raises RegistryError for a
    malformed manifest or an unsupported layer type, BadDigest for a digest
    that is not sha256:<64 hex>.
    """
    try:
        config_desc = manifest["config"]
        descs = manifest["layers"]
        if not isinstance(descs, list):
            raise TypeError
        for desc in [config_desc, *descs]:
            if not isinstance(desc["digest"], str):
                raise TypeError
    except (KeyError, TypeError):
        raise RegistryError(f"{where}: malformed manifest") from None
    # Before any of them names a URL, a file or a store path.
    try:
        digest.check(config_desc["digest"], "config digest")
        for desc in descs:
            digest.check(desc["digest"], "layer digest")
    except digest.BadDigest as e:
        raise digest.BadDigest(f"{where}: manifest: {e}") from None
    for desc in descs:
        if desc.get("mediaType") and desc["mediaType"] not in LAYER_TYPES:
            raise RegistryError(f"{where}: unsupported layer type {desc.get('mediaType')}")
    return config_desc, descs


def parse_config(raw, n_layers, where):
    """The image config (a dict) from its raw JSON, checked.

    Its rootfs.diff_ids must be a list of sha256 digests, n_layers long
    (as many as the manifest lists).  Raises BockerError or BadDigest.
    """
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
