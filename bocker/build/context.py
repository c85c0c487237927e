"""The trees a COPY or ADD reads from: the build context or a stage's rootfs.

A Tree holds an O_PATH fd of its top; every source path is resolved below
that fd with openat2(), never by a host path lookup:

- the build context with RESOLVE_BENEATH: a `../x` source is refused
  before any lookup, and a symlink in the context (or a symlinked parent
  directory) that leads out of it ends in EXDEV, refused with a message,
  never followed to the host's /etc/shadow;
- a stage's rootfs (COPY --from) with RESOLVE_IN_ROOT: it is hostile, and
  an absolute symlink or '..' there resolves inside it, as the stage's
  own processes saw it.

Below a source's top (a directory copied) every name is opened relative
to its parent's fd with O_NOFOLLOW: a symlink is copied as a symlink,
never entered; a FIFO, socket or device node is refused; depth bounded.
Files the context's .dockerignore excludes are invisible: not found as a
source, not matched by a glob, left out of a copied directory (the
matcher: `.ignored(relpath)` and `.may_include_below(reldir)`).

Globs follow Go's filepath.Match, one path component at a time, as
Docker's COPY does: `*`, `?`, `[...]` / `[^...]` with ranges, `\\` escapes;
a malformed pattern is an error.
"""
import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass

from bocker.build import globs
from bocker.build.errors import BuildError
from bocker.kernel import native, treeio
from bocker.kernel.rootfs_read import UnsafeFile, _kind

MAX_DEPTH = treeio.MAX_DEPTH   # (its walk's bound)
MAX_MATCHES = 100_000      # sources one glob may expand to
_CHUNK = 1 << 20
_CONTEXT = native.RESOLVE_BENEATH | native.RESOLVE_NO_MAGICLINKS
_IN_ROOT = native.RESOLVE_IN_ROOT | native.RESOLVE_NO_MAGICLINKS | native.RESOLVE_NO_XDEV
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^git@")


@dataclass(frozen=True)
class Source:
    """One resolved source of a COPY: parts (its path below the tree's
    top, symlinks resolved; () is the top), name (the last component as
    written: where a file lands below a directory dest), is_dir, and
    pattern (the argument it came from, for messages)."""
    parts: tuple
    name: str
    is_dir: bool
    pattern: str


# ------------------------------------------------------------------ globs

def has_meta(component):
    """Whether a path component holds a Go glob metacharacter."""
    return any(c in component for c in "*?[\\")


def compile_match(pattern):
    """A compiled regex matching one path component as Go's
    filepath.Match(pattern, name) does (globs.py); BuildError for a
    malformed pattern."""
    try:
        return re.compile(globs.translate(pattern, reversed_ranges_match_nothing=True),
                          re.DOTALL)
    except globs.PatternError:
        raise _bad(pattern) from None


def _bad(pattern):
    return BuildError(f"syntax error in pattern: {pattern}")


def split_source(text, in_root, keyword="COPY"):
    """A source argument's components, cleaned as Docker cleans it (a
    leading '/' means the tree's top).  A '..' above the top: refused for
    the context, kept at the top in a rootfs (in_root)."""
    parts = []
    for comp in text.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            elif not in_root:
                raise BuildError(f"{keyword} {text}: the path is outside the build context")
            continue
        parts.append(comp)
    return tuple(parts)


# ------------------------------------------------------------------ trees

class Tree:
    """A directory tree to copy from; see the module docstring."""

    def __init__(self, fd, in_root, matcher, where):
        self.fd, self.in_root, self.matcher, self.where = fd, in_root, matcher, where
        self._real = os.readlink(f"/proc/self/fd/{fd}")

    @classmethod
    def context(cls, path, matcher=None):
        """The build context at path, .dockerignore applied through matcher."""
        try:
            fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise BuildError(f"the build context {path}: {e.strerror}") from None
        return cls(fd, False, matcher, "the build context")

    @classmethod
    def rootfs(cls, path, where="the stage"):
        """A stage's rootfs (hostile): paths resolve inside it."""
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return cls(fd, True, None, where)

    def close(self):
        """Close the tree's fd."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- visibility (.dockerignore)

    def visible(self, parts, is_dir):
        """Whether the path parts is in the context as Docker sends it."""
        if self.matcher is None or not parts:
            return True
        for k in range(1, len(parts)):
            prefix = "/".join(parts[:k])
            if self.matcher.ignored(prefix) and not self.matcher.may_include_below(prefix):
                return False
        return self._visible_here(parts, is_dir)

    def _visible_here(self, parts, is_dir):
        """visible() for a path whose parent directories are known visible
        (a walk below a source checks each name once, not each prefix)."""
        if self.matcher is None or not parts:
            return True
        rel = "/".join(parts)
        if not self.matcher.ignored(rel):
            return True
        return is_dir and self.matcher.may_include_below(rel)

    # -- resolution

    def _open(self, parts, flags=0):
        """An O_PATH fd of parts below the top (symlinks followed inside)."""
        resolve = _IN_ROOT if self.in_root else _CONTEXT
        return native.openat2(self.fd, "/".join(parts) or ".", os.O_PATH | os.O_CLOEXEC | flags,
                              0, resolve)

    def _parts_of(self, fd):
        """The components of the open fd's path below the top."""
        real = os.readlink(f"/proc/self/fd/{fd}")
        if real == self._real:
            return ()
        base = self._real.rstrip("/") + "/"
        if not real.startswith(base):  # cannot happen under BENEATH / IN_ROOT
            raise BuildError(f"{self.where}: a path resolved outside it")
        return tuple(real[len(base):].split("/"))

    def _failed(self, e, pattern, keyword):
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            where = "the build context (or excluded by .dockerignore)" if not self.in_root \
                else self.where
            return BuildError(f"{keyword} {pattern}: not found in {where}")
        if e.errno == errno.EXDEV:
            return BuildError(f"{keyword} {pattern}: a symlink leads outside the build context")
        if e.errno == errno.ELOOP:
            return BuildError(f"{keyword} {pattern}: too many levels of symlinks")
        return BuildError(f"{keyword} {pattern}: {os.strerror(e.errno)}")

    def sources(self, patterns, keyword="COPY"):
        """The Sources the arguments name: plain paths or Go globs, in
        order; BuildError for an escape, a URL (ADD), nothing found."""
        out = []
        for pattern in patterns:
            if _URL.match(pattern):
                raise BuildError(f"{keyword} from a URL is not supported: {pattern}"
                                 if keyword == "ADD" else
                                 f"{keyword}: a URL is not a source ({pattern}); ADD "
                                 f"from a URL is not supported either")
            parts = split_source(pattern, self.in_root, keyword)
            if any(has_meta(c) for c in parts):
                found = [self._source(m, pattern, keyword) for m in self._glob(parts, pattern,
                                                                              keyword)]
                found = [s for s in found if s is not None]
                if not found:
                    raise BuildError(f"{keyword} {pattern}: no source files were specified")
                out.extend(found)
            else:
                out.append(self._source(parts, pattern, keyword, missing_ok=False))
        return out

    def _glob(self, parts, pattern, keyword):
        """Candidate paths for a glob, one component at a time (sorted)."""
        candidates, literal = [()], True
        for comp in parts:
            if not has_meta(comp):
                candidates = [c + (comp,) for c in candidates]
                continue
            regex = compile_match(comp)
            grown = []
            for c in candidates:
                for name in self._list(c, pattern, keyword, strict=literal):
                    if regex.fullmatch(name):
                        grown.append(c + (name,))
                        if len(grown) > MAX_MATCHES:
                            raise BuildError(f"{keyword} {pattern}: more than {MAX_MATCHES} "
                                             f"matches")
            candidates, literal = grown, False
        return candidates

    def _list(self, parts, pattern, keyword, strict=False):
        """Names in the directory parts ([] if it is none or missing).
        strict: parts is the pattern's literal head (`lnk/*`), whose escape
        is refused as a plain path's is."""
        try:
            pfd = self._open(parts, os.O_DIRECTORY)
        except OSError as e:
            # a directory a wildcard matched that is a symlink out of the
            # context holds no match inside it (a final match that leads
            # out is refused: _source)
            quiet = (errno.ENOENT, errno.ENOTDIR) if strict else \
                (errno.ENOENT, errno.ENOTDIR, errno.EXDEV, errno.ELOOP)
            if e.errno in quiet:
                return []
            raise self._failed(e, pattern, keyword) from None
        try:
            real = self._parts_of(pfd)
            if not self.visible(real, True) or not self.visible(parts, True):
                return []
            dfd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(pfd)
        try:
            return sorted(os.listdir(dfd))
        finally:
            os.close(dfd)

    def _source(self, parts, pattern, keyword, missing_ok=True):
        """The Source at parts (a top-level symlink followed, inside the
        tree), or None for a glob's candidate that is not there."""
        try:
            fd = self._open(parts)
        except OSError as e:
            if missing_ok and e.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise self._failed(e, pattern, keyword) from None
        try:
            st = os.fstat(fd)
            real = self._parts_of(fd)
        finally:
            os.close(fd)
        is_dir = stat.S_ISDIR(st.st_mode)
        if not (self.visible(parts, is_dir) and self.visible(real, is_dir)):
            if missing_ok:
                return None
            raise self._failed(OSError(errno.ENOENT, "ignored"), pattern, keyword)
        if not is_dir and not stat.S_ISREG(st.st_mode):
            raise BuildError(f"{keyword} {pattern}: {_kind(st.st_mode)}: cannot copy it")
        return Source(real, parts[-1] if parts else "", is_dir, pattern)

    # -- reading

    def entries(self, source):
        """The treeio Entries of a source, its top first (rel ()), parents
        before children, sorted; ignored files left out (treeio.walk's
        keep).  An entry's open() is valid until the next entry is asked
        for."""
        try:
            top = self._open(source.parts)
        except OSError as e:
            raise self._failed(e, source.pattern, "COPY") from None
        keep = None if self.matcher is None else \
            (lambda rel, is_dir: self._visible_here(source.parts + rel, is_dir))
        try:
            yield from treeio.walk(top, source.pattern, keep=keep)
        except UnsafeFile as e:  # (a path below the source, or the source itself)
            where = source.pattern if e.path == source.pattern else f"{source.pattern}/{e.path}"
            raise BuildError(f"{where}: {e.reason}") from None
        except OSError as e:  # changed while copied
            raise BuildError(f"{source.pattern}: {e.strerror or e}") from None
        finally:
            os.close(top)

    def digest(self, sources):
        """sha256 hex of what a COPY of sources reads: each source's
        pattern and kind, then every entry's name, type, mode, size, link
        target and content (the build cache's key part).  Not its mtime,
        as BuildKit's content hash: a fresh checkout of the same files
        hits the cache (and a hit keeps the first copy's mtimes)."""
        h = hashlib.sha256()
        for s in sources:
            h.update(json.dumps(["source", s.pattern, list(s.parts), s.name, s.is_dir])
                     .encode() + b"\n")
            for e in self.entries(s):
                link = list(e.linkname) if e.kind == "hardlink" else e.linkname
                h.update(json.dumps([list(e.rel), e.kind, e.mode, e.size, link])
                         .encode() + b"\n")
                if e.kind == "file":
                    left = e.size
                    with e.open() as f:
                        while left > 0:
                            chunk = f.read(min(_CHUNK, left))
                            if not chunk:
                                break
                            h.update(chunk)
                            left -= len(chunk)
                    h.update(b"%d\n" % (e.size - left))
        return h.hexdigest()
