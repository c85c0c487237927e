"""Named and anonymous volumes: a btrfs subvolume per volume under
<root>/volumes/<name>/_data with its volume.json beside it.

names.py validates names (only a valid name ever becomes a path),
parse.py reads -v, --mount and an image's Volumes into MountSpecs,
volumes.py creates, lists and removes volumes, usage.py says which
containers use one, plan.py turns a request into the record's Mounts at
create, copyup.py fills an empty volume from the image.
"""
