"""One layer tar: what tree `upper` adds or changes over tree `lower`.

The trees are snapshots (a layer's, a build step's, an image's rootfs):
hostile image content, read without ever following a symlink.  The
changes come from fsdiff's walk (the one `bocker diff` uses: an untouched
file is the same inode with the same ctime in both snapshots); each is
then read through directory fds opened one component at a time with
O_NOFOLLOW, and a file is only read if it is still the inode walked.

The tar is deterministic, so the same trees give the same diff ID:
entries in path order (a directory, then its opaque marker, then its
entries by name), numeric owners with no user or group names, mtimes in
whole seconds (as Docker's layers), no atime or ctime, xattrs only from
the namespaces a layer can carry (user., trusted., security.capability)
as sorted SCHILY.xattr PAX records.  A deleted entry is an OCI whiteout
`.wh.NAME`; a directory whose lower entries are all gone is one opaque
`.wh..wh..opq` instead of a whiteout per entry.  A file with several
names in the layer is stored once, its other names as hard links to it.
Sockets are left out (no tar holds one).
"""
import errno
import os
import stat
import tarfile

from bocker.image.extract import OPAQUE, WHITEOUT
from bocker.kernel import treeio
from bocker.runtime import fsdiff

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_XATTR_PREFIXES = ("user.", "trusted.")
_XATTR_NAMES = frozenset({"security.capability"})
_SPECIAL = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
            stat.S_IFIFO: tarfile.FIFOTYPE}


def write(fileobj, upper, lower=None):
    """Write the layer of upper over lower (None: all of upper) as a tar
    stream to the binary file object fileobj; the caller hashes it."""
    ufd = os.open(upper, _DIR)
    try:
        lfd = os.open(lower, _DIR) if lower is not None else None
        try:
            found = fsdiff.compare(ufd, lfd)
        finally:
            if lfd is not None:
                os.close(lfd)
        with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            _write_entries(tf, ufd, _ordered(found))
    finally:
        os.close(ufd)


def _ordered(found):
    """(sort key, kind, components, st) of every tar entry: the changes,
    a whiteout for a deletion (none below an opaque directory), an opaque
    marker right after its directory."""
    opaque = {c.path for c in found if c.opaque}
    out = []
    for c in found:
        parts = tuple(c.path.split("/")[1:])
        if c.kind == "D":
            if "/" + "/".join(parts[:-1]) not in opaque:
                key = parts[:-1] + (WHITEOUT + parts[-1],)
                out.append((key, "whiteout", key, None))
            continue
        if stat.S_ISSOCK(c.st.st_mode):
            continue
        out.append((parts, "entry", parts, c.st))
        if c.opaque:
            # "" sorts before every name: the marker comes before the
            # directory's own entries (extract spares those anyway)
            out.append((parts + ("",), "opaque", parts + (OPAQUE,), None))
    out.sort(key=lambda e: e[0])
    return out


def _write_entries(tf, root_fd, entries):
    dirs = _DirFds(root_fd)
    seen = {}  # (dev, ino) of a file with several names -> the first name's components
    try:
        for _, kind, parts, st in entries:
            info = tarfile.TarInfo("/".join(parts))
            if kind != "entry":
                info.mode = 0
                tf.addfile(info)  # an empty regular file, mode 0, owned by 0:0, mtime 0
                continue
            parent = dirs.at(parts[:-1])
            _add(tf, info, parent, parts, st, seen)
    finally:
        dirs.close()


def _add(tf, info, parent, parts, st, seen):
    """One changed or added entry below the directory fd parent."""
    name, mode = parts[-1], st.st_mode
    info.mode, info.uid, info.gid = stat.S_IMODE(mode), st.st_uid, st.st_gid
    info.mtime = st.st_mtime_ns // 1_000_000_000
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        fd = os.open(name, _DIR, dir_fd=parent)
        try:
            _same(fd, st, parts)
            _xattrs(info, fd)
        finally:
            os.close(fd)
        tf.addfile(info)
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=parent)
        tf.addfile(info)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if key in seen:
            info.type, info.linkname = tarfile.LNKTYPE, "/".join(seen[key])
            tf.addfile(info)
            return
        if st.st_nlink > 1:
            seen[key] = parts
        fd = os.open(name, _FILE, dir_fd=parent)
        try:
            _same(fd, st, parts)
            _xattrs(info, fd)
            info.size = st.st_size
            with os.fdopen(os.dup(fd), "rb", buffering=1 << 20) as f:
                tf.addfile(info, _Exactly(f, st.st_size, parts))
        finally:
            os.close(fd)
    elif stat.S_IFMT(mode) in _SPECIAL:
        info.type = _SPECIAL[stat.S_IFMT(mode)]
        if info.type != tarfile.FIFOTYPE:
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tf.addfile(info)


def _same(fd, st, parts):
    got = os.fstat(fd)
    if (got.st_dev, got.st_ino) != (st.st_dev, st.st_ino) or \
            stat.S_IFMT(got.st_mode) != stat.S_IFMT(st.st_mode):
        raise OSError(errno.ESTALE, "changed while saved", "/".join(parts))


def _xattrs(info, fd):
    """The layer-worthy xattrs of the open file fd as SCHILY.xattr PAX records, sorted."""
    try:
        names = os.listxattr(fd)
    except OSError:
        return
    for xname in sorted(names):
        if xname not in _XATTR_NAMES and not xname.startswith(_XATTR_PREFIXES):
            continue
        try:
            value = os.getxattr(fd, xname)
        except OSError:
            continue
        info.pax_headers["SCHILY.xattr." + xname] = value.decode("utf-8", "surrogateescape")


class _Exactly:
    """Reads exactly size bytes of f: the header's size is what the tar
    must hold (a file cut short meanwhile is an error, not a torn tar)."""

    def __init__(self, f, size, parts):
        self.f, self.left, self.parts = f, size, parts

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        if n and not data:
            raise OSError(errno.ESTALE, "shrank while saved", "/".join(self.parts))
        self.left -= len(data)
        return data


class _DirFds:
    """The open directory fds of the path being written, from the root
    down: entries come in path order, so each directory is opened once,
    component by component with O_NOFOLLOW."""

    def __init__(self, root_fd):
        self.root_fd, self.parts, self.fds = root_fd, (), []

    def at(self, parts):
        """An fd of the directory at components parts (owned here)."""
        if len(parts) > treeio.MAX_DEPTH + 1:
            raise OSError(errno.ELOOP, "too deep", "/".join(parts))
        keep = 0
        while keep < min(len(parts), len(self.parts)) and parts[keep] == self.parts[keep]:
            keep += 1
        while len(self.fds) > keep:
            os.close(self.fds.pop())
        self.parts = self.parts[:keep]
        for comp in parts[keep:]:
            parent = self.fds[-1] if self.fds else self.root_fd
            self.fds.append(os.open(comp, _DIR, dir_fd=parent))
            self.parts += (comp,)
        return self.fds[-1] if self.fds else self.root_fd

    def close(self):
        """Close every fd opened here (not the root's)."""
        while self.fds:
            os.close(self.fds.pop())
