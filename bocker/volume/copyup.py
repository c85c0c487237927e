"""Docker's copy-up: an empty volume mounted at a path where the image
has content gets a copy of it first.

The image is hostile input: its path is resolved below a directory fd of
its rootfs with openat2 RESOLVE_IN_ROOT (a symlink on the way, absolute or
'..', resolves inside the image as the container would see it, never on
the host; no magic links, no crossing of mounts), and only a directory is
copied.  The copy reads through that fd (/proc/self/fd/N/. in cp, which
inherits it), so no host path lookup walks the image again; cp -a copies
symlinks as symlinks, owners, modes, xattrs, hard links (reflinks on
btrfs, so it is cheap).
"""
import errno
import os
import stat
import subprocess

from bocker.errors import BockerError
from bocker.kernel import native

_RESOLVE = native.RESOLVE_IN_ROOT | native.RESOLVE_NO_MAGICLINKS | native.RESOLVE_NO_XDEV
_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV)


def open_dir(rootfs, path):
    """An O_PATH fd of directory path inside rootfs, or None if there is
    none there (missing, not a directory, unresolvable)."""
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = native.openat2(root, path.lstrip("/") or ".", os.O_PATH | os.O_CLOEXEC, 0,
                            _RESOLVE)
    except OSError as e:
        if e.errno in _ABSENT:
            return None
        raise
    finally:
        os.close(root)
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def copy_up(rootfs, path, target):
    """Copy the directory at path inside rootfs (if any) into the empty
    directory target, as its content and attributes; True if copied."""
    fd = open_dir(rootfs, path)
    if fd is None:
        return False
    try:
        proc = subprocess.run(["cp", "-a", "--reflink=auto", "--", f"/proc/self/fd/{fd}/.",
                               target], pass_fds=(fd,), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finally:
        os.close(fd)
    if proc.returncode:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise BockerError(f"cannot fill the volume from the image's {path}: {detail[0][:200]}")
    return True
