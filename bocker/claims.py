"""Claims: a directory of symlinks NAME -> OWNER, each made atomically by
symlink(2), which creates it or fails with EEXIST, so processes claiming
at once never share a name and no lock file is needed.  A container's
address lease (net/ipam.py) and its user-namespace id block
(confine/userns.py) are both claims, named by the address or the first
host uid, owned by the container ID."""
import os


def claims(directory):
    """{name: owner} of every claim in directory (none if it is missing)."""
    out = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return out
    for name in names:
        try:
            out[name] = os.readlink(os.path.join(directory, name))
        except OSError:
            pass  # released meanwhile, or not a claim
    return out


def owner_of(directory, name):
    """The owner of one claim, or None if it is not claimed (or name is
    not one entry's name: it comes from records, which may be hostile)."""
    if not isinstance(name, str) or not name or "/" in name or "\0" in name \
            or name in (".", ".."):
        return None
    try:
        return os.readlink(os.path.join(directory, name))
    except OSError:
        return None  # not claimed, or not a claim


def claim_first(directory, owner, names, taken=()):
    """Claim the first of names (in order) not in taken and not claimed by
    another process meanwhile; returns it, or None when all are taken."""
    os.makedirs(directory, exist_ok=True)
    taken = set(taken)
    for name in names:
        if name in taken:
            continue
        try:
            os.symlink(owner, os.path.join(directory, name))
            return name
        except FileExistsError:
            taken.add(name)  # another process won this one: try the next
    return None


def drop(directory, name):
    """Remove one claim; False if it was gone already."""
    try:
        os.unlink(os.path.join(directory, name))
        return True
    except FileNotFoundError:
        return False  # released by someone else meanwhile


def release(directory, owner):
    """Drop every claim owner holds; a no-op if it holds none."""
    for name, held_by in claims(directory).items():
        if held_by == owner:
            drop(directory, name)


def prune(directory, keep):
    """Drop every claim whose owner is not in keep (after a crash between
    claim and release); returns {name: owner} of those dropped."""
    return {name: owner for name, owner in claims(directory).items()
            if owner not in keep and drop(directory, name)}
