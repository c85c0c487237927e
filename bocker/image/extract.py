"""Safe extraction of one layer tar (gzip, zstd or plain) onto a rootfs.

The layer is applied to a directory that already holds the layers below
it.  Every path is resolved one component at a time with directory fds and
O_NOFOLLOW; symlinks are followed by hand *inside* the rootfs (an absolute
target or a `..` never climbs above it, as if the rootfs were `/`), and the
final component is never followed.  So a hostile layer cannot write outside
the rootfs, even through a symlink an earlier layer planted.  Entries with
a `..` component are rejected.  Whiteouts (.wh.NAME, .wh..wh..opq) remove
what lower layers put there.  Knows nothing of the store (layer_store.py).
"""
import errno
import hashlib
import io
import os
import shutil
import stat
import tarfile
import zlib

from bocker.errors import BockerError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_MAX_SYMLINKS = 40
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class LayerError(BockerError):
    """A layer that cannot be applied (corrupt, hostile or unsupported)."""


# ---------------------------------------------------------------- streams

class _HashingReader(io.RawIOBase):
    """Pass reads through while hashing them (the layer's diff ID)."""

    def __init__(self, inner):
        self.inner, self.hash, self.size = inner, hashlib.sha256(), 0

    def readable(self):
        """Always: this is a reader."""
        return True

    def readinto(self, buf):
        """Fill buf from the inner stream, hashing what passes."""
        data = self.inner.read(len(buf))
        if not data:
            return 0
        n = len(data)
        buf[:n] = data
        self.hash.update(data)
        self.size += n
        return n

    def drain(self):
        """Read to the end, so the hash covers padding after the tar's end."""
        while self.read(_CHUNK):
            pass


def decompressed(fileobj):
    """A readable stream of fileobj's tar bytes, whatever its compression."""
    buffered = fileobj if hasattr(fileobj, "peek") else io.BufferedReader(fileobj, _CHUNK)
    magic = buffered.peek(4)[:4]
    if magic.startswith(_GZIP_MAGIC):
        import gzip
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if magic == _ZSTD_MAGIC:
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
    return buffered


# ---------------------------------------------------------------- extraction

def split_member(name):
    """Path components of a tar member, contained in the rootfs.

    A leading '/' and '.' components are dropped (an absolute name means the
    same path inside the rootfs); any '..' component is rejected.
    """
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise LayerError(f"layer entry '{name}' escapes the rootfs")
    return parts


class Extractor:
    """Applies tar members to one rootfs directory; see module docstring."""

    def __init__(self, rootfs):
        self.root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                               | os.O_CLOEXEC)
        self.privileged = os.geteuid() == 0
        self.created = set()   # paths this layer wrote: whiteouts spare them
        self.dir_times = []    # directory mtimes, set last (children touch them)

    def close(self):
        """Close the rootfs directory fd."""
        os.close(self.root_fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- path resolution, never leaving the rootfs

    def walk(self, parts, create=False):
        """An fd of the directory at parts inside the rootfs (caller closes).

        Symlinks on the way are followed inside the rootfs; missing
        directories are made (0755) when create is true.
        """
        stack = [os.dup(self.root_fd)]
        todo = list(parts)
        links = 0
        try:
            while todo:
                comp = todo.pop(0)
                if comp in ("", "."):
                    continue
                if comp == "..":
                    if len(stack) > 1:      # '..' at the rootfs stays there
                        os.close(stack.pop())
                    continue
                try:
                    fd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, dir_fd=stack[-1])
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(comp, 0o755, dir_fd=stack[-1])
                    fd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, dir_fd=stack[-1])
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.stat(comp, dir_fd=stack[-1], follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        raise NotADirectoryError(errno.ENOTDIR, "not a directory",
                                                 "/".join(parts)) from None
                    links += 1
                    if links > _MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "too many symlinks", "/".join(parts))
                    target = os.readlink(comp, dir_fd=stack[-1])
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    todo[:0] = target.split("/")
                    continue
                stack.append(fd)
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

    # -- members

    def apply(self, tf):
        """Apply every member of an open (streaming) TarFile."""
        for member in tf:
            self.add(member, tf)
        self.finish()

    def finish(self):
        """Set directory mtimes last, deepest first."""
        for parts, ns in reversed(self.dir_times):
            try:
                fd = self.walk(parts)
            except OSError:
                continue  # replaced by a later entry
            try:
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)
        self.dir_times.clear()

    def add(self, member, tf):
        """Apply one member: a whiteout, or an entry to create."""
        parts = split_member(member.name)
        if not parts:
            return  # the rootfs itself: keep its own metadata
        base = parts[-1]
        try:
            parent = self.walk(parts[:-1], create=True)
        except OSError as e:
            raise LayerError(f"layer entry '{member.name}': {e.strerror}") from None
        try:
            if base == OPAQUE:
                self._opaque(parent, parts[:-1])
            elif base.startswith(WHITEOUT + WHITEOUT):
                pass  # other AUFS metadata (.wh..wh.plnk ...): not files, ignored
            elif base.startswith(WHITEOUT):
                name = base[len(WHITEOUT):]
                if name in ("", ".", ".."):
                    raise LayerError(f"bad whiteout '{member.name}'")
                if parts[:-1] + (name,) not in self.created:
                    _remove(parent, name)
            else:
                self._create(parent, parts, member, tf)
                self.created.add(parts)
        except OSError as e:
            raise LayerError(f"layer entry '{member.name}': {e.strerror}") from None
        except (OverflowError, ValueError) as e:  # absurd uid, mtime, device numbers
            raise LayerError(f"layer entry '{member.name}': {e}") from None
        finally:
            os.close(parent)

    def _opaque(self, parent, dir_parts):
        # Hide everything the lower layers put in this directory, but not
        # what this layer already wrote there.
        for name in os.listdir(parent):
            if dir_parts + (name,) not in self.created:
                _remove(parent, name)

    def _create(self, parent, parts, member, tf):
        base = parts[-1]
        try:
            old = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None and not (member.isdir() and stat.S_ISDIR(old.st_mode)):
            _remove(parent, base)
        mode = member.mode & 0o7777
        if member.isdir():
            if old is None or not stat.S_ISDIR(old.st_mode):
                os.mkdir(base, 0o700, dir_fd=parent)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=parent)
            try:
                self._owner_mode_fd(fd, member, mode)
            finally:
                os.close(fd)
            self.dir_times.append((parts, _ns(member.mtime)))
            return
        if member.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                src = tf.extractfile(member)
                if member.sparse is not None:
                    _copy_sparse(src.raw, fd, member)
                else:
                    with os.fdopen(os.dup(fd), "wb", closefd=True) as out:
                        shutil.copyfileobj(src, out, _CHUNK)
                self._owner_mode_fd(fd, member, mode)
                os.utime(fd, ns=(_ns(member.mtime),) * 2)
            finally:
                os.close(fd)
            return
        if member.issym():
            os.symlink(member.linkname, base, dir_fd=parent)
        elif member.islnk():
            target = split_member(member.linkname)
            if not target:
                raise LayerError(f"hard link '{member.name}' to the rootfs itself")
            tparent = self.walk(target[:-1])
            try:
                # linkat without AT_SYMLINK_FOLLOW: a link to a symlink links
                # the symlink itself, so it cannot reach outside either.
                os.link(target[-1], base, src_dir_fd=tparent, dst_dir_fd=parent,
                        follow_symlinks=False)
            finally:
                os.close(tparent)
            return  # a hard link shares its target's metadata
        elif member.ischr() or member.isblk():
            if not self.privileged:
                return  # only root may make device nodes; skip them
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor),
                     dir_fd=parent)
        elif member.isfifo():
            os.mkfifo(base, 0o600, dir_fd=parent)
        else:
            return  # nothing else is a file (GNU long names are headers)
        self._owner(base, parent, member)
        if not member.issym():
            # Just made by us and not a symlink, so following is safe here.
            os.chmod(base, mode, dir_fd=parent)
        os.utime(base, ns=(_ns(member.mtime),) * 2, dir_fd=parent, follow_symlinks=False)

    def _owner_mode_fd(self, fd, member, mode):
        if self.privileged:
            os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, mode)  # after chown, which clears setuid/setgid
        for key, value in member.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                try:
                    os.setxattr(fd, key[len("SCHILY.xattr."):],
                                value.encode("utf-8", "surrogateescape"))
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES):
                        raise

    def _owner(self, base, parent, member):
        if self.privileged:
            os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)


def _copy_sparse(raw, fd, member):
    """A sparse member's data written where its map puts it, its holes left
    as holes: a 2 KiB layer may declare terabytes of zeros, which a copy
    would write out in full until the disk is full.  raw is the member's
    unbuffered reader; the map's regions are read in order (the stream
    cannot seek back: a map that goes back is a corrupt layer)."""
    for offset, numbytes in member.sparse:
        raw.seek(offset)
        os.lseek(fd, offset, os.SEEK_SET)
        while numbytes > 0:
            data = raw.read(min(numbytes, _CHUNK))
            if not data:
                raise LayerError(f"layer entry '{member.name}': its sparse map runs past "
                                 f"its size")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            numbytes -= len(data)
    os.ftruncate(fd, member.size)


def _ns(mtime):
    # PAX mtimes are decimals of any size: keep them within what utimensat takes.
    seconds = float(mtime)
    if seconds != seconds:  # NaN
        return 0
    return int(min(max(seconds, -(2 ** 62) / 1e9), (2 ** 62) / 1e9) * 1_000_000_000)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove(parent, name):
    """Remove name (a file, symlink or whole tree) below the directory fd."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        _remove_tree(parent, name)
    else:
        os.unlink(name, dir_fd=parent)


def _remove_tree(parent, name):
    """Remove the directory name below parent and all it holds, by fds
    (never following a symlink) and without recursion: a layer can nest
    directories deeper than Python's recursion limit, where rmtree raises
    RecursionError.  Each directory is listed once; one fd per level."""
    def enter(pfd, dname):
        fd = os.open(dname, _DIR_FLAGS, dir_fd=pfd)
        subdirs = []
        stack.append((pfd, dname, fd, subdirs))  # closed by the finally if listing fails
        for entry in os.listdir(fd):
            if stat.S_ISDIR(os.stat(entry, dir_fd=fd, follow_symlinks=False).st_mode):
                subdirs.append(entry)
            else:
                os.unlink(entry, dir_fd=fd)

    stack = []
    try:
        enter(parent, name)
        while stack:
            pfd, dname, fd, subdirs = stack[-1]
            if subdirs:
                enter(fd, subdirs.pop())
            else:
                stack.pop()
                os.close(fd)
                os.rmdir(dname, dir_fd=pfd)
    finally:
        for _, _, fd, _ in stack:
            os.close(fd)


def extract(fileobj, rootfs):
    """Apply one layer (gzip, zstd or plain tar) to rootfs.

    Returns (diff_id, size): the sha256 of the uncompressed tar and its size.
    """
    stream = _HashingReader(decompressed(fileobj))
    try:
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tf, \
                Extractor(rootfs) as ex:
            ex.apply(tf)
        stream.drain()
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, OverflowError) as e:
        # ValueError: tarfile's own header parsing lets int() errors out
        # (a GNU.sparse.map of 'x,y'); a member's own are LayerErrors by now
        if isinstance(e, OSError) and e.errno:
            raise LayerError(f"cannot apply layer: {e.strerror or e}") from None
        raise LayerError(f"corrupt layer: {e}") from None  # incl. BadGzipFile
    except Exception as e:
        if type(e).__name__ == "ZstdError":
            raise LayerError(f"corrupt layer: {e}") from None
        raise
    return "sha256:" + stream.hash.hexdigest(), stream.size
