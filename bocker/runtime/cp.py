"""`bocker cp`: files between a container (running or not) and the host,
or a tar stream on stdin/stdout, with Docker's naming rules.

A container path is first mapped to the tree that holds it (mapped_root):
the host source of the -v / volume mount whose destination is the
longest prefix of the path (record["Mounts"], or the Spec's volumes for
a record without it), else the container's rootfs.  The rest of the
path is resolved inside that tree with openat2(RESOLVE_IN_ROOT): an
absolute symlink or '..' in the container stays inside it, as the
container itself would see it.  Below that, treeio never follows a
symlink (module docstring there), on either side: copying out cannot
read a host file through a container's symlink, copying in cannot write
through one.  The mapping is lexical (a symlink in the container that
points into a volume's directory is resolved in the rootfs, not in the
volume); tmpfs mounts are not visible (they live in the container's
mount namespace only).
"""
import os
import posixpath
import stat

from bocker.errors import BockerError, InvalidArgument
from bocker.kernel import native, treeio

_RESOLVE = native.RESOLVE_IN_ROOT | native.RESOLVE_NO_MAGICLINKS | native.RESOLVE_NO_XDEV


class CopyError(BockerError):
    """A cp that cannot be done as asked (a missing path, a kind mismatch)."""


def split_arg(text):
    """'CONTAINER:PATH' -> (container, path); a plain path (or '-') ->
    (None, text).  As Docker: a path with a '/' before its first ':' (or
    starting with '.' or '/') is a local path."""
    if text == "-":
        return None, text
    head, colon, rest = text.partition(":")
    if not colon or "/" in head or not head or text.startswith((".", "/")):
        return None, text
    return head, rest


def mapped_root(paths, record, path):
    """(host directory, path inside it, read-only) of the container path."""
    norm = posixpath.normpath("/" + path.lstrip("/"))  # (POSIX keeps a leading //)
    for dest, source, readonly in _mounts(record):
        if norm == dest or norm.startswith(dest + "/"):
            return source, norm[len(dest):] or "/", readonly
    rootfs = os.path.join(paths.container(record["Id"]), "rootfs")
    return rootfs, norm, bool((record.get("Spec") or {}).get("read_only"))


def _mounts(record):
    """[(destination, host source, read-only)], the longest destination first."""
    out = []
    mounts = record.get("Mounts")
    if isinstance(mounts, list):
        for m in mounts:
            if not isinstance(m, dict) or m.get("Type") not in ("bind", "volume"):
                continue
            dest, source = m.get("Destination"), m.get("Source")
            if isinstance(dest, str) and isinstance(source, str) and dest.startswith("/") \
                    and source.startswith("/"):
                out.append((posixpath.normpath(dest), source, m.get("RW") is False))
    else:
        from bocker.runtime import spec

        for volume in (record.get("Spec") or {}).get("volumes") or []:
            try:
                source, dest, readonly = spec.parse_volume(volume)
            except BockerError:
                continue
            out.append((dest, source, readonly))
    return sorted(out, key=lambda m: -len(m[0]))


def _open_in(root, path, follow, flags=0):
    """An O_PATH fd of path resolved inside the directory root."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return native.openat2(root_fd, path, os.O_PATH | os.O_CLOEXEC | flags
                              | (0 if follow else os.O_NOFOLLOW), 0, _RESOLVE)
    finally:
        os.close(root_fd)


def _as_dir(pfd):
    """A readable directory fd of the O_PATH fd pfd (closed here)."""
    try:
        return os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(pfd)


def _prefixed(entries, prefix):
    """entries with prefix put before each rel (and each hard link's target)."""
    for e in entries:
        e.rel = prefix + e.rel
        if e.kind == "hardlink":
            e.linkname = prefix + tuple(e.linkname)
        yield e


def _name(path):
    """The last component of path ('' for '/'), and whether path asks
    for a directory's contents (Docker's trailing '/.')."""
    contents = path.endswith("/.") or path in (".", "/")
    return posixpath.basename(posixpath.normpath(path).rstrip("/")), contents


def copy_out(paths, record, src, dest, *, archive=False, follow=False, stdout=None):
    """Copy the container path src to the host path dest ('-': a tar
    stream to the binary file stdout).  archive: keep owners (else the
    copy is root's); follow: a symlink src is copied as what it points to
    (inside the container).  Set-uid/gid bits never reach the host."""
    root, rest, _ = mapped_root(paths, record, src)
    name, contents = _name(src)
    top = _wrapped(lambda: _open_in(root, rest, follow or contents), src)
    try:
        is_dir = stat.S_ISDIR(os.fstat(top).st_mode)
        entries = treeio.walk(top, src)
        if dest == "-":
            return _wrapped(lambda: treeio.to_tar(entries, stdout, () if contents or not name
                                                  else (name,)), src)
        base, prefix = _host_target(dest, name, is_dir, contents)
        try:
            with treeio.TreeWriter(base, keep_owner=archive, strip_suid=True) as w:
                _wrapped(lambda: [w.put(e) for e in _prefixed(entries, prefix)], src)
        finally:
            os.close(base)
    finally:
        os.close(top)


def _host_target(dest, name, is_dir, contents):
    """(directory fd, prefix) where a copy of name lands on the host."""
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return fd, () if (is_dir and contents) or not name else (name,)
    if st is not None and is_dir:
        raise CopyError(f"cannot copy a directory to the file {dest}")
    if st is None and dest.endswith("/"):
        raise CopyError(f"no such directory: {dest}")
    parent = os.path.dirname(os.path.abspath(dest))
    try:
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CopyError(f"{parent}: {e.strerror}") from None
    return fd, (os.path.basename(os.path.abspath(dest)),)


def copy_in(paths, record, src, dest, *, archive=False, follow=False, stdin=None):
    """Copy the host path src ('-': a tar stream from the binary file
    stdin) to the container path dest.  archive: keep owners (else root's)."""
    from bocker.image.extract import split_member

    root, rest, readonly = mapped_root(paths, record, dest)
    if readonly:
        raise CopyError(f"{dest}: the container's filesystem there is read-only")
    if src == "-":
        target = _wrapped(lambda: _open_in(root, rest, True, os.O_DIRECTORY), dest)
        base = _as_dir(target)
        try:
            with treeio.TreeWriter(base, keep_owner=archive) as w:
                _wrapped(lambda: [w.put(e) for e in treeio.from_tar(stdin, split_member)],
                         dest)
        finally:
            os.close(base)
        return
    name, contents = _name(src)
    top = _wrapped(lambda: os.open(src, os.O_PATH | os.O_CLOEXEC
                                   | (0 if follow or contents else os.O_NOFOLLOW)), src)
    try:
        is_dir = stat.S_ISDIR(os.fstat(top).st_mode)
        base, prefix = _container_target(root, rest, dest, name, is_dir, contents)
        try:
            with treeio.TreeWriter(base, keep_owner=archive) as w:
                _wrapped(lambda: [w.put(e) for e in _prefixed(treeio.walk(top, src), prefix)],
                         src)
        finally:
            os.close(base)
    finally:
        os.close(top)


def _container_target(root, rest, dest, name, is_dir, contents):
    """(directory fd, prefix) where a copy of name lands in the container."""
    try:
        pfd = _open_in(root, rest, True)
    except FileNotFoundError:
        pfd = None
    if pfd is not None and stat.S_ISDIR(os.fstat(pfd).st_mode):
        return _as_dir(pfd), () if (is_dir and contents) or not name else (name,)
    if pfd is not None:
        os.close(pfd)
        if is_dir:
            raise CopyError(f"cannot copy a directory to the file {dest}")
    elif dest.endswith("/"):
        raise CopyError(f"no such directory in the container: {dest}")
    parent, base = posixpath.split(posixpath.normpath(rest))
    if not base:
        raise CopyError(f"cannot copy to {dest}")
    pdir = _wrapped(lambda: _open_in(root, parent or "/", True, os.O_DIRECTORY), dest)
    return _as_dir(pdir), (base,)


def _wrapped(action, where):
    """action(), its OSError as one CopyError line naming where."""
    try:
        return action()
    except BockerError:
        raise
    except FileNotFoundError:
        raise CopyError(f"no such file or directory: {where}") from None
    except OSError as e:
        raise CopyError(f"{where}: {e.strerror or e}") from None


def check_args(src, dest):
    """(direction, container ref, container path, other path): 'out' for
    CONTAINER:SRC DEST, 'in' for SRC CONTAINER:DEST; InvalidArgument for
    two local paths or two containers, as Docker."""
    src_c, src_p = split_arg(src)
    dest_c, dest_p = split_arg(dest)
    if src_c and dest_c:
        raise InvalidArgument("copying between containers is not supported")
    if not src_c and not dest_c:
        raise InvalidArgument("must specify at least one container source")
    if src_c:
        return "out", src_c, src_p or "/", dest_p
    return "in", dest_c, dest_p or "/", src_p
