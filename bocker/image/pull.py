"""`bocker pull`: resolve a reference at its registry, then install the image.

The registry client (registry.py) resolves the reference to this platform's
manifest; manifest.py checks it and the config; install.py fetches every
missing layer (downloaded and verified into a temp directory before the
first is applied, so a corrupt blob leaves nothing behind) and creates the
image.
"""
from typing import NamedTuple

from bocker import faults, trace
from bocker.image import manifest as _manifest
from bocker.image import platforms, reference, registry
from bocker.image.install import Progress, install


class PullResult(NamedTuple):
    """What a pull made: the image, whether it was already there, what was asked."""

    image_id: str
    up_to_date: bool
    reference: reference.Reference
    digest: str


def pull(paths, name, tag=None, *, platform=None, insecure_registries=(), progress=None):
    """Pull NAME[:TAG|@DIGEST] (or NAME TAG) into a new image; a PullResult.

    progress is an install.Progress; platform 'os/arch[/variant]' picks
    from an index (default this host's); insecure_registries names hosts
    allowed plain HTTP or unverified TLS.
    """
    from bocker.kernel import store

    progress = progress or Progress()
    ref = reference.parse(name, tag)
    # a root that is not set up says so before any registry is asked
    store.require_btrfs(paths.root)
    want = platforms.parse_platform(platform) if platform else None
    insecure = ref.registry in insecure_registries or ref.api_host in insecure_registries
    client = registry.Client(ref.registry, insecure=insecure)
    faults.point("pull.resolve")
    manifest, manifest_digest, top = client.resolve(ref.repository, ref.reference, want)
    config_desc, descs = _manifest.check_manifest(manifest, ref)
    faults.point("pull.config")
    config_raw = client.blob_bytes(ref.repository, config_desc["digest"])
    config = _manifest.parse_config(config_raw, len(descs), ref)
    image_name = ref.familiar() if ref.tag and not ref.digest else None

    def fetch(i, desc, dest):
        with trace.span("blob download", digest=desc["digest"], size=desc.get("size")):
            client.download(ref.repository, desc["digest"], dest, desc.get("size"),
                            progress=lambda n: progress.advance(desc["digest"], n))

    image_id, up_to_date = install(
        paths, config, config_desc["digest"], descs, fetch, progress,
        name=image_name, source=f"{ref.name}@{top}",
        extra={"digest": top, "manifest_digest": manifest_digest,
               "repo_digests": [f"{ref.name}@{top}"]})
    from bocker import events

    events.emit(paths, "image", "pull", image_name or f"{ref.name}@{top}",
                {"name": image_name or ref.name})
    return PullResult(image_id, up_to_date, ref, top)
