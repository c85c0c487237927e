"""`bocker import`: a tarball (a file, or a stream) as a new image of one
layer, applied by extract.py's safe extraction (no entry lands outside
the new rootfs, whiteouts work as in a layer)."""
import time

from bocker.image import extract, images


def import_tar(paths, fileobj, source, name=None, message=None, changes=()):
    """A new image whose rootfs is the tar read from fileobj (gzip, zstd or
    plain); its history has one step (message as its comment), its config
    the --change instructions applied (image.changes; refused before the
    tar is read).  Returns its ID."""
    from bocker.image import changes as changing

    config = changing.apply({}, changes)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    step = {"created": created, "created_by": f"bocker import {source}"[:8192]}
    if message:
        step["comment"] = message[:1024]
    return images.create(paths, f"import {source}",
                         lambda rootfs: extract.extract(fileobj, rootfs), name=name,
                         config=config, extra={"history": [step], **(
                             {"comment": message[:1024]} if message else {})})
