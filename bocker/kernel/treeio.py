"""Copying file trees a container controls, without ever following one of
its symlinks out of the tree: the engine of `cp`, `export` and `diff`.

A tree is read from an fd of its top (the caller resolved that inside
the container's root: openat2 RESOLVE_IN_ROOT); below it every name is
opened relative to its parent directory's fd with O_NOFOLLOW, so a
symlink is read as a symlink (readlink), never entered, and a rename race
ends in ELOOP/ENOTDIR, never outside.  Only regular files are opened for
reading (O_NONBLOCK, after an O_PATH look: no FIFO hangs, no driver's
open); a FIFO, socket or device node is refused (UnsafeFile).

A tree is written below a directory fd the same way (TreeWriter): each
component is made or opened with O_NOFOLLOW relative to its parent, an
entry in the way that is not a directory is replaced, never followed.

Entries travel as Entry objects between sources (walk, from_tar) and
sinks (TreeWriter, to_tar), so the four directions of `cp` are the four
pairs.
"""
import errno
import os
import stat
import tarfile

from bocker.kernel.rootfs_read import UnsafeFile, _kind

MAX_DEPTH = 256
_CHUNK = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SUID = stat.S_ISUID | stat.S_ISGID


class Entry:
    """One file of a tree: rel (path components below the copied top; ()
    is the top itself), kind (dir, file, symlink, hardlink), its mode
    (permission bits), uid, gid, mtime_ns, size, linkname (a symlink's
    target; a hardlink's: the rel of the file it links to), and open():
    a readable file object of a file's content (the caller closes it)."""

    def __init__(self, rel, kind, mode=0o644, uid=0, gid=0, mtime_ns=0, size=0, linkname="",
                 opener=None):
        self.rel, self.kind, self.mode, self.uid, self.gid = rel, kind, mode, uid, gid
        self.mtime_ns, self.size, self.linkname, self._opener = mtime_ns, size, linkname, opener

    def open(self):
        """The content of a file entry, as a readable binary file object."""
        return self._opener()


# ------------------------------------------------------------------ sources

def walk(top_fd, name="top", specials=False, keep=None):
    """Every Entry of the tree at top_fd (an O_PATH fd of a directory,
    file or symlink; not closed here), the top first, parents before
    children, names sorted.  name: the top's name in messages.  A FIFO or
    device node is an Entry of kind "special" (never opened: its mode and
    rdev only) if specials, else refused (UnsafeFile); a socket is always
    left out (no archive can hold it).  keep(rel, is_dir), if given, says
    which entries below the top are walked at all (a build context's
    .dockerignore).  OSError for a tree that changes under us in a way
    that would need following a link."""
    st = os.fstat(top_fd)
    seen = {}
    yield from _entries(top_fd, None, st, (), seen, name, specials, keep)


def _entries(fd, child, st, rel, seen, where, specials=False, keep=None):
    # fd: the parent's directory fd and child the name below it, or (the
    # top) fd of the entry itself and child None
    mode = st.st_mode
    meta = dict(mode=stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid, mtime_ns=st.st_mtime_ns)
    if stat.S_ISLNK(mode):
        target = os.readlink(child, dir_fd=fd) if child is not None else _readlink_top(fd)
        yield Entry(rel, "symlink", linkname=target, **meta)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in seen:
            yield Entry(rel, "hardlink", linkname=seen[key], **meta)
            return
        if st.st_nlink > 1:
            seen[key] = rel
        yield Entry(rel, "file", size=st.st_size, opener=lambda: _open_file(fd, child, st, where),
                    **meta)
    elif stat.S_ISDIR(mode):
        if len(rel) > MAX_DEPTH:
            raise UnsafeFile(where, f"deeper than {MAX_DEPTH} directories")
        yield Entry(rel, "dir", **meta)
        dfd = os.open(child, _DIR, dir_fd=fd) if child is not None else \
            os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            again = os.fstat(dfd)
            if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
                raise OSError(errno.ESTALE, "changed while copied", "/".join(rel) or where)
            for sub in sorted(os.listdir(dfd)):
                try:
                    sst = os.stat(sub, dir_fd=dfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone meanwhile
                if keep is not None and not keep(rel + (sub,), stat.S_ISDIR(sst.st_mode)):
                    continue
                yield from _entries(dfd, sub, sst, rel + (sub,), seen, where, specials, keep)
        finally:
            os.close(dfd)
    elif stat.S_ISSOCK(mode) and specials:
        return
    elif specials:
        entry = Entry(rel, "special", **meta)
        entry.type, entry.rdev = stat.S_IFMT(mode), st.st_rdev
        yield entry
    else:
        path = "/".join(rel) or where
        raise UnsafeFile(path, f"{_kind(mode)}: cannot copy it")


def _readlink_top(fd):
    # an O_PATH|O_NOFOLLOW fd of a symlink: readlinkat(fd, "") reads it
    return os.readlink("", dir_fd=fd)


def _open_file(fd, child, st, where):
    """A reader of the regular file (the very inode walked).  It is looked
    at through an O_PATH fd first and opened only once that is the same
    regular file: one swapped for a device node or FIFO meanwhile is never
    opened (no driver's open, no FIFO wait)."""
    pfd = os.open(child, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd) \
        if child is not None else fd
    try:
        got = os.fstat(pfd)
        if (got.st_dev, got.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(got.st_mode):
            raise UnsafeFile(child or where, "changed while copied")
        ffd = os.open(f"/proc/self/fd/{pfd}",
                      os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    finally:
        if pfd != fd:
            os.close(pfd)
    return os.fdopen(ffd, "rb", buffering=_CHUNK)


def from_tar(fileobj, split):
    """Every Entry of a tar stream (any compression tarfile reads), its
    names split by split(name) -> components (it refuses '..').  Only
    directories, regular files, symlinks and hard links; a device node or
    FIFO is refused."""
    with tarfile.open(fileobj=fileobj, mode="r|*", errorlevel=2) as tf:
        for m in tf:
            rel = split(m.name)
            meta = dict(mode=m.mode & 0o7777, uid=m.uid, gid=m.gid,
                        mtime_ns=int(m.mtime) * 10**9)
            if m.isdir():
                yield Entry(rel, "dir", **meta)
            elif m.isreg():
                yield Entry(rel, "file", size=m.size, opener=lambda m=m: tf.extractfile(m),
                            **meta)
            elif m.issym():
                yield Entry(rel, "symlink", linkname=m.linkname, **meta)
            elif m.islnk():
                yield Entry(rel, "hardlink", linkname=split(m.linkname), **meta)
            else:
                raise UnsafeFile(m.name, "a device node or FIFO in the archive: refused")


# ------------------------------------------------------------------ sinks

def to_tar(entries, out, prefix=()):
    """Write entries as a tar stream to the binary file out, each named
    prefix + its rel (numeric owners, no user or group names)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            name = "/".join(prefix + e.rel) or "."
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid = e.mode, e.uid, e.gid
            info.mtime = e.mtime_ns // 10**9
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.linkname
                tf.addfile(info)
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, "/".join(prefix + e.linkname)
                tf.addfile(info)
            elif e.kind == "special":
                info.type = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
                             stat.S_IFIFO: tarfile.FIFOTYPE}[e.type]
                info.devmajor, info.devminor = os.major(e.rdev), os.minor(e.rdev)
                tf.addfile(info)
            else:
                info.size = e.size
                with e.open() as f:
                    tf.addfile(info, _Exactly(f, e.size))


class _Exactly:
    """Reads at most size bytes of f: a file that grows while it is copied
    is cut at the size its header says (tarfile would write a torn tar)."""

    def __init__(self, f, size):
        self.f, self.left = f, size

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        self.left -= len(data)
        return data


class TreeWriter:
    """Writes entries below the directory fd base (not closed here): an
    entry's rel is its path below base.  keep_owner (cp -a, import): its
    uid/gid, else root's.  strip_suid (a host-side write): set-user/group-ID
    bits dropped, so a container cannot plant a set-uid-root file on the host.
    Directory modes and times are set at close(), deepest first."""

    def __init__(self, base, keep_owner=False, strip_suid=False):
        self.base, self.keep_owner, self.strip_suid = base, keep_owner, strip_suid
        self.dirs = {(): os.dup(base)}
        self.later = []

    def close(self):
        """Directory metadata, then every fd closed."""
        try:
            for rel, mode, mtime in reversed(self.later):
                fd = self.dirs.get(rel)
                if fd is not None:
                    os.chmod(fd, self._mode(mode))
                    os.utime(fd, ns=(mtime, mtime))
        finally:
            for fd in self.dirs.values():
                os.close(fd)
            self.dirs.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _mode(self, mode):
        return mode & ~_SUID if self.strip_suid else mode

    def _dir(self, rel):
        """The fd of the directory rel below base, made if missing."""
        if rel in self.dirs:
            return self.dirs[rel]
        parent = self._dir(rel[:-1])
        fd = self._open_dir(parent, rel[-1])
        self.dirs[rel] = fd
        return fd

    def _open_dir(self, parent, name):
        try:
            return os.open(name, _DIR, dir_fd=parent)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            os.unlink(name, dir_fd=parent)  # a file or symlink in the way: replaced
        os.mkdir(name, 0o700, dir_fd=parent)
        return os.open(name, _DIR, dir_fd=parent)

    def _clear(self, parent, name):
        """Remove a non-directory at name (a directory there is an error)."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "cannot overwrite a directory with a "
                                    "non-directory", name)
        os.unlink(name, dir_fd=parent)

    def _own(self, e, fd=None, name=None, parent=None):
        uid, gid = (e.uid, e.gid) if self.keep_owner else (0, 0)
        if fd is not None:
            os.fchown(fd, uid, gid)
        else:
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)

    def put(self, e):
        """Write one entry (its parents are made if the source had none)."""
        if e.kind == "dir":
            fd = self._dir(e.rel)
            if e.rel:
                self._own(e, fd=fd)
                self.later.append((e.rel, e.mode, e.mtime_ns))
            return
        if not e.rel:
            raise IsADirectoryError(errno.EISDIR, "the destination is a directory")
        parent, name = self._dir(e.rel[:-1]), e.rel[-1]
        self._clear(parent, name)
        if e.kind == "symlink":
            os.symlink(e.linkname, name, dir_fd=parent)
            self._own(e, name=name, parent=parent)
            os.utime(name, ns=(e.mtime_ns, e.mtime_ns), dir_fd=parent, follow_symlinks=False)
        elif e.kind == "hardlink":
            self._link(e, parent, name)
        elif e.kind != "file":
            raise UnsafeFile("/".join(e.rel), "a device node or FIFO: refused")
        else:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                with e.open() as src:
                    _copy(src, fd)
                self._own(e, fd=fd)
                os.chmod(fd, self._mode(e.mode))
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
            finally:
                os.close(fd)

    def _link(self, e, parent, name):
        """A hard link to a file written earlier below base, found again
        component by component (never through a symlink)."""
        target = tuple(e.linkname)
        if not target:
            raise UnsafeFile(name, "a hard link to the copy's top")
        tdir = self._dir(target[:-1])
        tfd = os.open(target[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tdir)
        try:
            if not stat.S_ISREG(os.fstat(tfd).st_mode):
                raise UnsafeFile("/".join(target), "a hard link to a non-file")
            os.link(f"/proc/self/fd/{tfd}", name, dst_dir_fd=parent, follow_symlinks=True)
        finally:
            os.close(tfd)


def _copy(src, fd):
    while True:
        chunk = src.read(_CHUNK)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]
