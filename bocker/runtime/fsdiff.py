"""`bocker diff`: what a container changed in its filesystem, as Docker's
A (added), C (changed), D (deleted) lines.

How: the container's rootfs is a btrfs snapshot of its image's, so an
untouched file is the very same inode in both trees, with the same size,
mode, owner, mtime and ctime (a snapshot copies inode items as they are;
any write, chmod, chown or touch moves ctime).  Both trees are walked side
by side, by name, through directory fds with O_NOFOLLOW (treeio's rules:
a symlink is compared by its target, never followed; nothing is opened
but directories); a file or symlink whose (type, mode, uid, gid, size,
mtime, ctime, symlink target) differ is C, an entry only in the container
A (with everything below it), one only in the image D (its children are
not listed, as Docker).  A directory is C when its type, mode or owner
changed or anything below it did (Docker's overlay copies the parents of
a change up; its mtime alone says nothing: bocker's own mount targets
move it).  The files bocker binds into every container (/etc/hostname,
/etc/hosts, /etc/resolv.conf: placeholders made at start) are left out,
as Docker leaves out its init layer.  Bounded by treeio.MAX_DEPTH.

The walk itself (compare) is shared with the layers `bocker save` writes
(image/layerdiff.py): there nothing is hidden, an empty lower tree makes
everything added, and a directory whose lower entries are all gone is
marked opaque (one whiteout for them all).
"""
import os
import stat

from bocker.errors import BockerError
from bocker.kernel import treeio

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


# bocker's mount targets in every container (runtime/mounts.py binds them)
HIDDEN = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"})


def _key(st, dfd, name):
    if stat.S_ISDIR(st.st_mode):
        return (st.st_mode, st.st_uid, st.st_gid)
    link = os.readlink(name, dir_fd=dfd) if stat.S_ISLNK(st.st_mode) else None
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
            st.st_rdev, link)


def changes(container_root, image_root):
    """[(kind, path)] sorted by path: kind 'A', 'C' or 'D'."""
    cfd = os.open(container_root, _DIR)
    try:
        ifd = os.open(image_root, _DIR)
        try:
            found = compare(cfd, ifd, HIDDEN)
        finally:
            os.close(ifd)
    finally:
        os.close(cfd)
    return sorted(((c.kind, c.path) for c in found), key=lambda c: c[1])


class Change:
    """One difference of the upper tree over the lower: kind 'A' (only in
    upper), 'C' (changed) or 'D' (only in lower); path '/a/b'; st the upper
    entry's lstat (None for 'D'); opaque: a directory in both whose lower
    entries are all gone (each is also listed as a 'D' below it)."""

    __slots__ = ("kind", "path", "st", "opaque")

    def __init__(self, kind, path, st=None, opaque=False):
        self.kind, self.path, self.st, self.opaque = kind, path, st, opaque


def compare(upper_fd, lower_fd, hidden=frozenset()):
    """[Change] of the tree at directory fd upper_fd over the one at
    lower_fd (None: an empty tree, so everything is 'A'), parents before
    children; paths in hidden are left out.  The walk `bocker diff` and
    the layers of `bocker save` share."""
    out = []
    _compare(upper_fd, lower_fd, "", out, 0, hidden)
    return out


def _listing(dfd):
    out = {}
    if dfd is None:
        return out
    for name in os.listdir(dfd):
        try:
            out[name] = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
    return out


def _compare(cfd, ifd, prefix, out, depth, hidden):
    """Append the changes below the directories cfd (container) and ifd
    (image, or None) to out; (any changes, all of ifd's entries gone)."""
    if depth > treeio.MAX_DEPTH:
        raise BockerError(f"{prefix or '/'}: deeper than {treeio.MAX_DEPTH} directories")
    mine, theirs = _listing(cfd), _listing(ifd)
    start = len(out)
    for name in sorted(theirs.keys() - mine.keys()):
        if f"{prefix}/{name}" not in hidden:
            out.append(Change("D", f"{prefix}/{name}"))
    for name in sorted(mine):
        st = mine[name]
        path = f"{prefix}/{name}"
        if path in hidden:
            continue
        old = theirs.get(name)
        if old is None:
            out.append(Change("A", path, st))
            if stat.S_ISDIR(st.st_mode):
                _all_added(cfd, name, path, out, depth + 1, hidden)
            continue
        both_dirs = stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(old.st_mode)
        here = len(out)
        below, opaque = _compare_dirs(cfd, ifd, name, path, out, depth, hidden) \
            if both_dirs else (False, False)
        if below or _key(st, cfd, name) != _key(old, ifd, name):
            out.insert(here, Change("C", path, st, opaque))
        if stat.S_ISDIR(st.st_mode) and not both_dirs:  # a file became a directory
            _all_added(cfd, name, path, out, depth + 1, hidden)
    return len(out) > start, bool(theirs) and not (theirs.keys() & mine.keys())


def _compare_dirs(cfd, ifd, name, path, out, depth, hidden):
    sub_c = os.open(name, _DIR, dir_fd=cfd)
    try:
        sub_i = os.open(name, _DIR, dir_fd=ifd)
        try:
            return _compare(sub_c, sub_i, path, out, depth + 1, hidden)
        finally:
            os.close(sub_i)
    finally:
        os.close(sub_c)


def _all_added(parent, name, prefix, out, depth, hidden):
    if depth > treeio.MAX_DEPTH:
        raise BockerError(f"{prefix}: deeper than {treeio.MAX_DEPTH} directories")
    dfd = os.open(name, _DIR, dir_fd=parent)
    try:
        listing = _listing(dfd)
        for sub in sorted(listing):
            st = listing[sub]
            if f"{prefix}/{sub}" in hidden:
                continue
            out.append(Change("A", f"{prefix}/{sub}", st))
            if stat.S_ISDIR(st.st_mode):
                _all_added(dfd, sub, f"{prefix}/{sub}", out, depth + 1, hidden)
    finally:
        os.close(dfd)
