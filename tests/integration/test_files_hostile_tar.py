"""`cp - CONTAINER:DEST`'s writer against hostile tar streams (hypothesis):
whatever the names ('..', absolute), symlinks (to '/', out of the tree, to
a directory beside it) and hard links of the archive, nothing outside the
destination directory is written, created or linked.

The writer runs in a child chrooted into a sandbox directory (its own
/etc, /outside, and /proc bound in for the hard links' /proc/self/fd): a
writer that did follow a symlink damages only the sandbox, never the
host's / (a broken writer once made / and /etc mode 0644 here)."""
import bz2
import gzip
import io
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bocker.errors import BockerError
from bocker.image.extract import split_member
from bocker.kernel import treeio

# tarfile's "r|*" imports these lazily: loaded here, not inside the chroot
_PRELOADED = (bz2, gzip, lzma)

# few names, so that one entry often lands on or under another's
NAMES = ["a", "b", "a/b", "a/b/c", "b/f", "../a", "a/../../b", "/a", ".", "./a/b", "a/f"]


def _names():
    return st.sampled_from(NAMES)


def _members(outside):
    targets = st.sampled_from(["/", "..", "../..", outside, outside + "/f", "a", "/etc",
                               "/etc/passwd", "../../../.." + outside])
    return st.lists(st.one_of(
        st.tuples(st.just("dir"), _names(), st.just("")),
        st.tuples(st.just("file"), _names(), st.just("")),
        st.tuples(st.just("sym"), _names(), targets),
        st.tuples(st.just("hard"), _names(), _names()),
    ), max_size=12)


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for kind, name, target in members:
            info = tarfile.TarInfo(name or ".")
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif kind == "file":
                info.size = 4
                tf.addfile(info, io.BytesIO(b"evil"))
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, target
                tf.addfile(info)
            else:
                info.type, info.linkname = tarfile.LNKTYPE, target or "."
                tf.addfile(info)
    return buf.getvalue()


def _snapshot(top):
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == top:
            dirnames[:] = [d for d in dirnames if d not in ("base", "proc")]
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st_ = os.lstat(p)
            out[p] = (st_.st_mode, st_.st_nlink, st_.st_size, st_.st_mtime_ns,
                      open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p)
                      else None)
    top_st = os.lstat(top)
    out[top] = (top_st.st_mode, top_st.st_mtime_ns)
    return out


OUTSIDE = "/outside"  # inside the sandbox, as the chrooted writer sees it


@pytest.fixture(scope="module")
def sandbox():
    """A directory with /etc, /outside and /proc (a bind mount of ours,
    unmounted at the end) for the chrooted writer."""
    top = tempfile.mkdtemp(prefix="bkfv-sandbox-")
    os.mkdir(os.path.join(top, "proc"))
    _reset(top)
    subprocess.run(["mount", "--bind", "/proc", os.path.join(top, "proc")], check=True)
    try:
        yield top
    finally:
        subprocess.run(["umount", "-l", os.path.join(top, "proc")], check=True)
        shutil.rmtree(top)


def _reset(top):
    """The sandbox as new (all but its /proc mount): each example starts
    from the same tree, whatever a broken writer did to the last one."""
    os.chmod(top, 0o700)
    for name in os.listdir(top):
        path = os.path.join(top, name)
        if name == "proc":
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    for d in ("etc", "outside", "base"):
        os.mkdir(os.path.join(top, d))
    for name in ("etc/passwd", "outside/f"):
        with open(os.path.join(top, name), "w") as f:
            f.write("sandbox\n")


def _write_chrooted(top, data):
    """Apply the tar data below /base in a child chrooted into top; the
    child's refusals (BockerError, OSError) are expected and ignored."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.chroot(top)
            os.chdir("/")
            fd = os.open("/base", os.O_RDONLY | os.O_DIRECTORY)
            try:
                with treeio.TreeWriter(fd) as w:
                    for e in treeio.from_tar(io.BytesIO(data), split_member):
                        w.put(e)
            except (BockerError, OSError):
                pass
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the chrooted writer crashed"


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(members=_members(OUTSIDE))
def test_a_hostile_tar_never_writes_outside_the_destination(sandbox, members):
    _reset(sandbox)
    before = _snapshot(sandbox)
    _write_chrooted(sandbox, _tar(members))
    assert _snapshot(sandbox) == before
