"""Host-side reads of files a container (or an archive) controls.

Whoever wrote the tree may have put a FIFO where a file is expected (a
plain open() would wait forever for a writer), a device node (whose
driver's open() has effects), a 100 MB file, or a symlink such as
/etc -> /root/.ssh that a host path lookup would follow out of the tree.
So every such read goes through open_regular():

- the path is resolved by openat2() below a directory fd of the tree:
  RESOLVE_IN_ROOT (a rootfs: absolute symlinks and '..' stay inside it, as
  the container itself would see them) or RESOLVE_BENEATH (an archive
  directory: any escape is refused), never through a magic link
  (/proc/self/...) or across a mount point;
- it is first opened O_PATH, which runs no driver's open and blocks on
  nothing; only a regular file is then reopened for reading (through
  /proc/self/fd, so the very inode that was checked), O_NONBLOCK and
  O_NOCTTY for good measure;
- read_file() reads at most limit bytes and refuses a larger file.
"""
import errno
import os
import stat

from bocker.errors import BockerError
from bocker.kernel import native

_RESOLVE = native.RESOLVE_NO_MAGICLINKS | native.RESOLVE_NO_XDEV
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket",
          stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symlink"}


class UnsafeFile(BockerError):
    """A file in a hostile tree that is not a regular file, or too large."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _kind(mode):
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(dirfd, path, *, beneath=False, follow=True):
    """An fd (O_RDONLY|O_NONBLOCK|O_CLOEXEC) of the regular file at path,
    resolved inside the tree at dirfd; the caller closes it.

    beneath: refuse any escape (EXDEV) instead of resolving it inside.
    follow: False refuses a symlink as the last component (ELOOP).
    Raises UnsafeFile for anything but a regular file, OSError otherwise
    (FileNotFoundError when it is missing).
    """
    resolve = _RESOLVE | (native.RESOLVE_BENEATH if beneath else native.RESOLVE_IN_ROOT)
    flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    pfd = native.openat2(dirfd, path, flags, 0, resolve)
    try:
        st = os.fstat(pfd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(path, f"{_kind(st.st_mode)}, not a regular file")
        fd = os.open(f"/proc/self/fd/{pfd}",
                     os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    finally:
        os.close(pfd)
    again = os.fstat(fd)
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):  # cannot happen; cheap
        os.close(fd)
        raise OSError(errno.ESTALE, f"{path}: changed while opened")
    return fd


def read_fd(fd, limit, name):
    """At most limit bytes of fd; UnsafeFile if there are more."""
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise UnsafeFile(name, f"larger than {limit} bytes")
    return b"".join(chunks)


def read_file(rootfs, path, limit):
    """The bytes of the regular file path inside the directory rootfs (as
    the container sees it: symlinks followed inside, never out), at most
    limit bytes.  Raises UnsafeFile (FIFO, device, too large...) or
    OSError (FileNotFoundError when it is missing)."""
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_regular(root, path)
    finally:
        os.close(root)
    try:
        if os.fstat(fd).st_size > limit:
            raise UnsafeFile(path, f"larger than {limit} bytes")
        return read_fd(fd, limit, path)
    finally:
        os.close(fd)
