"""COPY and ADD into a step's writable rootfs, with Docker's semantics.

- a directory source: its contents are copied, not the directory itself;
- a file source: to dest/NAME when dest ends with '/' (or is '.', or is an
  existing directory), else to dest itself;
- several sources (or a glob that matched several): dest must end with '/';
- missing directories of dest are made 0755, owned by the --chown owner
  (else root); every copied entry is owned 0:0 unless --chown;
- --chmod (octal) sets the mode of every copied file and directory;
- mtimes are kept; symlinks are copied as symlinks;
- ADD of a local tar (plain, gzip, bzip2, xz; told by its content, not its
  name) is extracted into dest by bocker.image.extract's Extractor, the
  safe extractor of pull (the archive's owners and modes kept).

The rootfs is hostile (a base image's): dest is resolved inside it with
openat2(RESOLVE_IN_ROOT), so a dest that is a symlink to /host-path lands
in the rootfs's /host-path, never the host's; below that, treeio's
TreeWriter makes every component with O_NOFOLLOW and replaces (never
follows) a symlink where a file is written.
"""
import bz2
import gzip
import lzma
import os
import posixpath
import stat
import tarfile
import zlib

from bocker.build.context import split_source
from bocker.build.errors import BuildError
from bocker.errors import BockerError
from bocker.kernel import native, treeio

_RESOLVE = native.RESOLVE_IN_ROOT | native.RESOLVE_NO_MAGICLINKS | native.RESOLVE_NO_XDEV
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40
_MAGIC = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))


def parse_chmod(text):
    """--chmod's octal mode -> int; BuildError otherwise."""
    if text is None:
        return None
    if not isinstance(text, str) or not text or len(text) > 5 or \
            any(c not in "01234567" for c in text) or int(text, 8) > 0o7777:
        raise BuildError(f"--chmod: invalid mode '{text}': want an octal mode such as 0755")
    return int(text, 8)


def dest_path(dest, workdir="/"):
    """(components of dest inside the rootfs, whether dest names a directory)."""
    if not dest:
        raise BuildError("no destination given")
    full = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    as_dir = dest.endswith("/") or dest == "." or dest.endswith("/.")
    parts = split_source(full, in_root=True)
    return parts, as_dir or not parts


def copy(tree, sources, rootfs, dest, *, chown=None, chmod=None, workdir="/",
         keyword="COPY"):
    """Copy sources (Tree.sources' answer) of tree into the rootfs
    directory at dest; see the module docstring.  chown: a (uid, gid) or a
    user[:group] resolved in rootfs; chmod: an octal string or int.
    Returns the bytes of file content written (a layer's size: what the
    cache records without walking the tree), or None if an archive was
    extracted (its size is not counted here)."""
    mode = chmod if isinstance(chmod, int) or chmod is None else parse_chmod(chmod)
    parts, as_dir = dest_path(dest, workdir)
    if len(sources) > 1 and not as_dir:
        raise BuildError(f"When using {keyword} with more than one source file, the "
                         f"destination must be a directory and end with a /")
    if isinstance(chown, str):
        from bocker.build import chown as chowning

        chown = chowning.resolve(rootfs, chown)
    owner = tuple(chown) if chown is not None else (0, 0)
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    written = 0
    try:
        for source in sources:
            try:
                size = _one(tree, source, root, parts, as_dir, owner, mode, keyword, dest)
                written = None if size is None or written is None else written + size
            except BockerError:
                raise
            except OSError as e:
                raise BuildError(f"{keyword} {source.pattern} {dest}: "
                                 f"{e.strerror or e}") from None
    finally:
        os.close(root)
    return written


def _one(tree, source, root, parts, as_dir, owner, mode, keyword, dest):
    if keyword == "ADD" and not source.is_dir:
        kind = _archive_kind(tree, source)
        if kind is not None:
            base = _ensure_dir(root, parts, owner, dest)
            try:
                _extract(tree, source, base, kind)
            finally:
                os.close(base)
            return None
    if source.is_dir:
        base, prefix = _ensure_dir(root, parts, owner, dest), ()
    elif as_dir:
        base, prefix = _ensure_dir(root, parts, owner, dest), (source.name,)
    else:
        existing = _existing_dir(root, parts)
        if existing is not None:
            base, prefix = existing, (source.name,)
        else:
            base, prefix = _ensure_dir(root, parts[:-1], owner, dest), (parts[-1],)
    size = 0
    try:
        with treeio.TreeWriter(base, keep_owner=True) as w:
            for e in tree.entries(source):
                w.put(_retarget(e, prefix, owner, mode))
                size += e.size if e.kind == "file" else 0
    finally:
        os.close(base)
    return size


def _retarget(e, prefix, owner, mode):
    """The entry as it is written: below prefix, owner's, --chmod's mode."""
    e.rel = prefix + e.rel
    if e.kind == "hardlink":
        e.linkname = prefix + tuple(e.linkname)
    e.uid, e.gid = owner
    if mode is not None and e.kind in ("file", "dir"):
        e.mode = mode
    return e


# ------------------------------------------------------------------ dest

def _existing_dir(root, parts):
    """A readable fd of parts if it resolves (in root) to a directory, else None."""
    try:
        pfd = native.openat2(root, "/".join(parts) or ".", os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE)
    except OSError:
        return None
    try:
        if not stat.S_ISDIR(os.fstat(pfd).st_mode):
            return None
        return os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(pfd)


def _ensure_dir(root, parts, owner, dest, links=0):
    """A readable fd of the directory parts inside root (resolved in root),
    the missing ones made 0755 and owned by owner; a dangling symlink on
    the way is followed inside root, as the kernel would."""
    try:
        pfd = native.openat2(root, "/".join(parts) or ".", os.O_PATH | os.O_DIRECTORY
                             | os.O_CLOEXEC, 0, _RESOLVE)
    except FileNotFoundError:
        pfd = None
    except NotADirectoryError:
        raise BuildError(f"{dest}: /{'/'.join(parts)} is not a directory") from None
    if pfd is not None:
        try:
            return os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(pfd)
    if not parts:
        raise BuildError(f"{dest}: the rootfs is missing")
    parent = _ensure_dir(root, parts[:-1], owner, dest, links)
    try:
        name = parts[-1]
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
        except FileExistsError:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode) or links >= _MAX_LINKS:
                raise BuildError(f"{dest}: /{'/'.join(parts)} is not a directory") from None
            # a dangling symlink: make what it points to, inside root
            target = os.readlink(name, dir_fd=parent)
            where = "" if target.startswith("/") else _inside(root, parent)
            return _ensure_dir(root, split_source(where + "/" + target, in_root=True),
                               owner, dest, links + 1)
        fd = os.open(name, _DIR, dir_fd=parent)
        os.fchown(fd, *owner)
        os.fchmod(fd, 0o755)
        return fd
    finally:
        os.close(parent)


def _inside(root, fd):
    """The path of the directory fd inside root ('/'-joined, '' for root)."""
    top = os.readlink(f"/proc/self/fd/{root}").rstrip("/")
    real = os.readlink(f"/proc/self/fd/{fd}")
    if real != top and not real.startswith(top + "/"):
        raise BuildError("a destination resolved outside the rootfs")
    return real[len(top):]


# ------------------------------------------------------------------ ADD archives

def _archive_kind(tree, source):
    """'tar', 'gz', 'bz2' or 'xz' if the file source is a tar archive
    (told by its content, as Docker does), else None."""
    for e in tree.entries(source):
        with e.open() as f:
            head = f.read(8)
            kind = next((k for magic, k in _MAGIC if head.startswith(magic)), "tar")
            f.seek(0)
            try:
                block = _opened(f, kind).read(512)
            except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError):
                return None
        try:
            tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except (tarfile.HeaderError, ValueError):
            return None
        return kind
    return None


def _opened(f, kind):
    """A reader of f's decompressed bytes."""
    if kind == "gz":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(f, "rb")
    if kind == "xz":
        return lzma.LZMAFile(f, "rb")
    return f


def _extract(tree, source, base, kind):
    """Extract the archive source into the directory fd base with pull's
    Extractor (its "rootfs" is base: nothing lands above it)."""
    from bocker.image.extract import Extractor, LayerError

    path = os.readlink(f"/proc/self/fd/{base}")
    for e in tree.entries(source):
        with e.open() as f:
            try:
                with Extractor(path) as ex:
                    # the path was only a way to name base: it must be that very directory
                    mine, theirs = os.fstat(base), os.fstat(ex.root_fd)
                    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
                        raise BuildError(f"ADD {source.pattern}: the destination changed")
                    stream = _opened(f, kind)
                    with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tf:
                        ex.apply(tf)
                    # to the end: a truncated compressed stream fails here
                    # (tarfile ends quietly at a torn header)
                    while stream.read(1 << 20):
                        pass
            except LayerError as err:
                raise BuildError(f"ADD {source.pattern}: {str(err).replace('layer ', '')}") \
                    from None
            except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError,
                    ValueError, OverflowError) as err:
                if isinstance(err, OSError) and err.errno:
                    raise BuildError(f"ADD {source.pattern}: {err.strerror or err}") from None
                raise BuildError(f"ADD {source.pattern}: corrupt archive: {err}") from None
        return

