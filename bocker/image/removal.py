"""`rmi` (and `rm img_...`): what removing an image means when names and
containers still point at it.

- A name of an image that has other names: only that name goes (Docker's
  "Untagged:"), whoever uses the image.
- An image a container (in any state) was made from: refused unless
  force.  With force, naming it by a name untags it (all its names: the
  image stays, nameless, so `diff` and `commit` of its containers still
  have their base); naming it by its ID deletes it.  Either way its
  containers keep working: each stored at its create what `start` needs of
  the image's config (record["ImageConfig"], recordshape.py), so a start
  never falls back to root for a User that went with the image.
- By ID, an image of several names is refused unless force (Docker's
  "referenced in multiple repositories").
- Else the image is deleted (its unused layers too).
"""
from bocker.errors import BockerError, CorruptRecord
from bocker.image import images, tags


class ImageInUse(BockerError):
    """rmi of an image a container was made from, without -f."""

    def __init__(self, ref, cid):
        super().__init__(f"image '{ref}' is used by container {cid}: remove the container "
                         f"first or use -f")


def users(paths, image_id):
    """The IDs of the containers (any state) made from image image_id."""
    from bocker.runtime import records

    return [r["Id"] for r in records.list_all(paths) if r.get("Image") == image_id]


def remove(paths, ref, force=False):
    """Remove what ref names as the module docstring says; returns the
    lines to print ("Untagged: NAME", "Removed: ID")."""
    image_id = images.resolve(paths, ref)
    try:
        record = images.load(paths, image_id)
    except CorruptRecord:
        record = {"id": image_id, "names": []}  # removable by its ID, as before
    name = tags.matched_name(record, ref)
    if name and len(record["names"]) > 1:
        tags.untag(paths, image_id, name)
        return [f"Untagged: {name}"]
    if not name and len(record["names"]) > 1 and not force:
        # by ID, an image of several names: Docker asks for -f (which name did you mean?)
        raise BockerError(f"image '{ref}' has {len(record['names'])} names "
                          f"({', '.join(record['names'])}): remove them one by one or use -f")
    # (a container created between this look and the removal below still
    # starts: its record keeps what it needs of the image, see docstring)
    using = users(paths, image_id)
    if using and not force:
        raise ImageInUse(ref, using[0])
    if using and name:
        for n in record["names"]:
            tags.untag(paths, image_id, n)
        return [f"Untagged: {n}" for n in record["names"]]
    from bocker.runtime import pool

    pool.drop_image(paths, image_id)  # no snapshot made ahead outlives its image
    removed = images.remove(paths, image_id)  # its untag and delete events are its own
    return [f"Removed: {removed}"]
