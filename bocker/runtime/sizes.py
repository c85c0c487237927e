"""ps -s / inspect -s: how much a container wrote to its rootfs.

A container's rootfs is a btrfs snapshot of its image's: the files it
shares are the image's, their inode change times (ctime) those they had
in the image.  Every file the container created, wrote, chmod-ed or
renamed has a ctime at or after the container's creation, and ctime
cannot be set back from inside (only by moving the host's clock).  So
SizeRw is the sum of the sizes of the regular files and symlinks whose
ctime is not older than the container, and the rest is the image's.
(Deleted image files count nothing, as Docker's whiteouts count ~0.)
The walk is os.fwalk with follow_symlinks=False: directory by fd, never
through a symlink the container planted, whatever it renames meanwhile.
"""
import os
import stat

# A container with millions of files must not make `ps -s` unbounded.
WALK_MAX_ENTRIES = 2_000_000


def changed_bytes(rootfs, since):
    """Bytes of the files under rootfs changed at or after since (epoch
    seconds); None if rootfs is not there (the container is gone)."""
    # No slack: an image made a moment before the container (a fresh pull,
    # a commit) must not count as written by it.  The kernel's ctime clock
    # is coarse (a tick behind at most); a container's first write comes
    # after its whole start, far more than a tick after since.
    since_ns = int(since * 1e9)
    total, seen = 0, 0
    try:
        os.lstat(rootfs)
    except OSError:
        return None
    try:
        # fwalk recurses, an fd a level: a hostile tree thousands of levels
        # deep ends the count there (EMFILE skips, RecursionError stops)
        for _dir, subdirs, files, dirfd in os.fwalk(rootfs, follow_symlinks=False):
            seen += 1
            # fwalk files a symlink to a directory among subdirs (and does
            # not descend it): it is one of the container's links all the same
            for name in files + subdirs:
                seen += 1
                if seen > WALK_MAX_ENTRIES:
                    return total
                try:
                    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except OSError:
                    continue  # gone while we looked
                if (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)) and \
                        st.st_ctime_ns >= since_ns:
                    total += st.st_size
    except RecursionError:
        pass
    return total


def container_sizes(paths, record, image_size):
    """(SizeRw, SizeRootFs) of a container record: what it wrote, and
    that plus its image's size (Docker's 'virtual')."""
    rw = changed_bytes(os.path.join(paths.container(record["Id"]), "rootfs"),
                       record.get("Created") or 0) or 0
    return rw, rw + (image_size or 0)
