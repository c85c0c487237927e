"""btrfs subvolumes through btrfsutil (never the btrfs CLI).

Images, layers and containers are subvolumes; a container's rootfs is a
writable snapshot of its image, which costs about a millisecond whatever
the image's size.
"""
import contextlib
import os

import btrfsutil

from bocker import faults, trace
from bocker.errors import NotSetUp


def is_btrfs(path):
    """True if path is on a btrfs filesystem."""
    try:
        btrfsutil.subvolume_id(path)
        return True
    except btrfsutil.BtrfsUtilError:
        return False


def require_btrfs(root):
    """Raise NotSetUp unless root is a btrfs filesystem."""
    if not os.path.isdir(root) or not is_btrfs(root):
        raise NotSetUp(f"{root} is not a btrfs filesystem: run 'bocker setup'")


def create(path):
    """Create an empty subvolume at path."""
    with trace.span("btrfs subvolume create", path=path):
        btrfsutil.create_subvolume(path)


def snapshot(source, target, readonly=False):
    """Snapshot subvolume source to target (writable unless readonly)."""
    with trace.span("btrfs snapshot", source=source, target=target, readonly=readonly):
        btrfsutil.create_snapshot(source, target, read_only=readonly)


def set_readonly(path, readonly=True):
    """Make a subvolume read-only (or writable again)."""
    btrfsutil.set_subvolume_read_only(path, readonly)


def is_subvolume(path):
    """True if path is a subvolume (not a plain directory)."""
    try:
        return btrfsutil.is_subvolume(path)
    except btrfsutil.BtrfsUtilError:
        return False


def delete(path):
    """Delete a subvolume and any nested in it; a missing one is fine."""
    try:
        if btrfsutil.get_subvolume_read_only(path):
            btrfsutil.set_subvolume_read_only(path, False)
        with trace.span("btrfs delete", target=path):
            btrfsutil.delete_subvolume(path, recursive=True)
    except btrfsutil.BtrfsUtilError as e:
        if e.errno != 2:  # ENOENT: already gone, nothing to do
            raise OSError(e.errno, f"delete subvolume {path}: {os.strerror(e.errno)}")


def remove_dir(directory, record="record.json"):
    """Remove a directory that holds a `rootfs` subvolume and metadata
    files: the record first (so it is never listed half-removed), then the
    subvolume, then the rest.  A missing or half-made directory is fine."""
    try:
        os.unlink(os.path.join(directory, record))
    except FileNotFoundError:
        pass
    faults.point("store.remove_dir.delete_rootfs")
    delete(os.path.join(directory, "rootfs"))
    faults.point("store.remove_dir.delete_rest")
    # the rest: metadata, or a second rootfs (an image's replace cut short)
    remove_directory_of_subvolumes(directory)


def remove_directory_of_subvolumes(directory):
    """Remove directory and everything in it, subvolumes and plain files
    (a container's or image's rest, the rootfs pool at teardown); what is
    gone already is fine."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(directory, name)
        with contextlib.suppress(FileNotFoundError):
            if is_subvolume(path):
                delete(path)
            else:
                os.unlink(path)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(directory)


def list_subvolumes(root):
    """Paths (relative to root) of every subvolume below root."""
    with btrfsutil.SubvolumeIterator(root) as it:
        return sorted(path for path, _ in it)


def copy_tree(source, target):
    """Copy a directory tree into target, keeping ownership, modes, xattrs,
    symlinks, hard links and device nodes; reflinks where the filesystem
    allows.  `cp -a` already does all of that right."""
    import subprocess

    subprocess.run(["cp", "-a", "--reflink=auto", "--", f"{source}/.", target],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def tree_size(path):
    """Apparent size in bytes of the files under path (hard links once)."""
    total, seen = 0, set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
