"""The container's working directory, made when the image lacks it (as
Docker makes -w's or the image's WorkingDir): each missing component is
a mkdir(2) below a directory resolved inside the rootfs by openat2
RESOLVE_IN_ROOT, so a symlink the image holds (/work -> /etc/host) is
followed as the container would follow it, never out of its root."""
import errno
import os
import posixpath
import stat

from bocker.errors import RunRefused
from bocker.kernel import native

_RESOLVE = native.RESOLVE_IN_ROOT | native.RESOLVE_NO_MAGICLINKS | native.RESOLVE_NO_XDEV
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


_MAX_LINKS = 40  # as the kernel's MAXSYMLINKS


def ensure(rootfs, path):
    """Make the absolute container path (and its missing parents) inside
    the rootfs directory, 0755 and root's (Docker's); a path that exists
    costs one openat2.  A dangling symlink on the way is followed as the
    container would (its target made, inside the root), as Docker's
    MkdirAll of the path resolved in scope.  RunRefused (one line) if it
    cannot be made."""
    root = os.open(rootfs, _DIR)
    try:
        if _exists(root, path.lstrip("/")):
            return
        _walk(root, [p for p in posixpath.normpath(path).split("/") if p])
    except OSError as e:
        raise RunRefused(f"cannot create the working directory '{path}': "
                         f"{os.strerror(e.errno)}") from None
    finally:
        os.close(root)


def _walk(root, todo):
    """mkdir each missing component of todo below root, following links."""
    done, links = [], 0
    while todo:
        name = todo.pop(0)
        here = "/".join(done + [name])
        if not _exists(root, here):
            target = _dangling_link(root, here)
            if target is not None:
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many symlinks")
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p and p != "."] + todo
                continue
            _mkdir_below(root, "/".join(done), name)
        done.append(name)


def _exists(root, rel):
    """True if rel (resolved inside root) is a directory; False if missing."""
    try:
        os.close(native.openat2(root, rel or ".", _DIR, 0, _RESOLVE))
        return True
    except FileNotFoundError:
        return False


def _dangling_link(root, rel):
    """The target of rel if it is a symlink (its parent resolved inside
    root), else None."""
    try:
        fd = native.openat2(root, rel, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, 0, _RESOLVE)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISLNK(os.fstat(fd).st_mode):
            raise OSError(errno.ENOTDIR, "not a directory")
        return os.readlink("", dir_fd=fd)
    finally:
        os.close(fd)


def _mkdir_below(root, parent_rel, name):
    # the parent as the container sees it; then a mkdir of one name in it
    # (mkdirat never follows a symlink at its last component)
    parent = native.openat2(root, parent_rel or ".", _DIR, 0, _RESOLVE)
    try:
        os.mkdir(name, 0o755, dir_fd=parent)
    finally:
        os.close(parent)
