"""Reading named files out of an image archive, a directory or a tar, safely.

Every name comes from the archive (manifest.json, index.json) and is
hostile: it is cleaned of '.' and refused with any '..'; in a directory it
is opened with openat2(RESOLVE_BENEATH), a regular file only; in a tar it
only ever names a member (symlink members resolved among the members, never
above the archive's top).  Both sources answer exists(name), open(name)
and close(); read_json reads a bounded JSON file from either.
"""
import errno
import json
import os
import posixpath
import tarfile

from bocker.errors import BockerError
from bocker.image import digest
from bocker.kernel import rootfs_read


class ArchiveError(BockerError):
    """A file that is not a loadable image archive."""


_MAX_LINKS = 16


def clean_name(name):
    """A hostile archive path with '.' and empty parts dropped; ArchiveError on '..' or NUL."""
    if not isinstance(name, str):
        raise ArchiveError(f"bad path in archive: {digest.show(name)}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or "\0" in name:
        raise ArchiveError(f"bad path in archive: {digest.show(name)}")
    return "/".join(parts)


class DirSource:
    """An archive unpacked into a directory (docker save's layout or an OCI layout)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def exists(self, name):
        """True if name is a regular file beneath the directory."""
        try:
            os.close(self._open(name))
            return True
        except (FileNotFoundError, ArchiveError):
            return False

    def _open(self, name):
        try:
            return rootfs_read.open_regular(self.fd, clean_name(name), beneath=True)
        except rootfs_read.UnsafeFile as e:
            raise ArchiveError(f"'{digest.show(name)}' in archive: {e.reason}") from None
        except FileNotFoundError:
            raise
        except OSError as e:
            if e.errno in (errno.EXDEV, errno.ELOOP):  # climbs out, or a link loop
                raise ArchiveError(f"bad path in archive: {digest.show(name)}") from None
            raise ArchiveError(f"cannot open {digest.show(name)} in archive: "
                               f"{os.strerror(e.errno)}") from None

    def open(self, name):
        """name, a regular file beneath the directory, open for reading."""
        try:
            return os.fdopen(self._open(name), "rb")
        except FileNotFoundError:
            raise ArchiveError(f"archive lacks {digest.show(name)}") from None

    def close(self):
        """Close the directory."""
        os.close(self.fd)


class TarSource:
    """An archive as a tar file (optionally compressed), read by member."""

    def __init__(self, path):
        try:
            self.tf = tarfile.open(path, "r:*")
            self.members = {clean_name(m.name): m for m in self.tf.getmembers()
                            if m.name.strip("./")}
        except (tarfile.TarError, OSError, EOFError, ValueError, OverflowError) as e:
            # ValueError: tarfile's header parsing lets int() errors out;
            # tarfile's "r:*" lists every method it tried, one per line
            why = str(e).splitlines()[0].rstrip(":") if str(e) else type(e).__name__
            raise ArchiveError(f"{path}: not an image archive ({why})") from None

    def _member(self, name):
        key = clean_name(name)
        for _ in range(_MAX_LINKS):
            member = self.members.get(key)
            if member is None:
                return None
            if member.issym():   # relative to its directory; '/' is the archive's top
                target = posixpath.join(posixpath.dirname(key), member.linkname)
            elif member.islnk():  # relative to the archive's top
                target = member.linkname
            else:
                if not member.isreg():
                    raise ArchiveError(f"{digest.show(name)} in archive: not a regular file")
                return member
            key = posixpath.normpath("/" + target).lstrip("/")
            if posixpath.normpath(target).startswith("../") or not key:
                raise ArchiveError(f"bad path in archive: {digest.show(name)}")
        raise ArchiveError(f"{digest.show(name)} in archive: too many links")

    def exists(self, name):
        """True if name is (or links to) a regular member."""
        return self._member(name) is not None

    def open(self, name):
        """The regular member name (links followed among members), open for reading."""
        member = self._member(name)
        if member is None:
            raise ArchiveError(f"archive lacks {digest.show(name)}")
        return self.tf.extractfile(member)

    def close(self):
        """Close the tar."""
        self.tf.close()


def read_json(source, name, limit=16 << 20):
    """(document, raw bytes) of the JSON file name in source, at most limit bytes."""
    with source.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError(f"{digest.show(name)} is too large")
    try:
        return json.loads(data), data
    except ValueError:
        raise ArchiveError(f"{digest.show(name)} is not JSON") from None
