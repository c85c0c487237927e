"""`cp - CONTAINER:DEST`'s writer against hostile tar streams (hypothesis):
whatever the names ('..', absolute), symlinks (to '/', out of the tree, to
a host directory) and hard links of the archive, nothing outside the
destination directory is written, created or linked.  As root (owners are
set), on a plain temporary directory."""
import io
import os
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bocker.errors import BockerError
from bocker.image.extract import split_member
from bocker.kernel import treeio

# few names, so that one entry often lands on or under another's
NAMES = ["a", "b", "a/b", "a/b/c", "b/f", "../a", "a/../../b", "/a", ".", "./a/b", "a/f"]


def _names():
    return st.sampled_from(NAMES)


def _members(outside):
    targets = st.sampled_from(["/", "..", "../..", outside, outside + "/f", "a", "/etc",
                               "/etc/passwd", "../../../../" + outside])
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
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st_ = os.lstat(p)
            out[p] = (st_.st_mode, st_.st_nlink, st_.st_size, st_.st_mtime_ns,
                      open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p)
                      else None)
    return out


OUTSIDE = "/tmp/bkfv-hostile-outside"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_members(OUTSIDE))
def test_a_hostile_tar_never_writes_outside_the_destination(members):
    import shutil
    import tempfile

    work = tempfile.mkdtemp(prefix="bkfv-hostile-")
    os.makedirs(OUTSIDE, exist_ok=True)
    try:
        with open(os.path.join(OUTSIDE, "f"), "w") as f:
            f.write("host\n")
        base = os.path.join(work, "base")
        os.mkdir(base)
        before = _snapshot(OUTSIDE), _snapshot("/etc")
        before_work = sorted(os.listdir(work))
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with treeio.TreeWriter(fd) as w:
                for e in treeio.from_tar(io.BytesIO(_tar(members)), split_member):
                    w.put(e)
        except (BockerError, OSError):
            pass  # refused part way: what was written must still be inside
        finally:
            os.close(fd)
        assert (_snapshot(OUTSIDE), _snapshot("/etc")) == before
        assert sorted(os.listdir(work)) == before_work  # nothing beside base either
    finally:
        shutil.rmtree(work)
        shutil.rmtree(OUTSIDE)
