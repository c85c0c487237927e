"""COPY/ADD of bocker build against the real kernel (root: ownership,
openat2): Docker's semantics, and hostile contexts, stage rootfses,
destination rootfses and archives.  Plain directories under tmp_path
stand for the context and the step's snapshot (copying needs no btrfs).
Each attack has a control showing it works without the guard."""
import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile

import pytest

from bocker.build import copying
from bocker.build.context import Tree
from bocker.build.errors import BuildError

SHADOW = "/etc/shadow"


@pytest.fixture
def dirs(tmp_path):
    ctx, rootfs, host = tmp_path / "ctx", tmp_path / "rootfs", tmp_path / "host"
    for d in (ctx, rootfs / "etc", host):
        d.mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n"
                                           "app:x:1000:1000::/home/app:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:\n")
    return ctx, rootfs, host


def do_copy(ctx, rootfs, args, dest, keyword="COPY", matcher=None, **kw):
    with Tree.context(str(ctx), matcher) as t:
        copying.copy(t, t.sources(args, keyword), str(rootfs), dest, keyword=keyword, **kw)


def listing(top):
    """{relpath: (kind, mode, uid, gid, link or content)} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if stat.S_ISLNK(st.st_mode):
                what = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                what = ("dir", None)
            else:
                what = ("file", open(p, "rb").read())
            out[rel] = (what[0], stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what[1])
    return out


# ------------------------------------------------------------ Docker's semantics

def test_semantics(dirs):
    ctx, rootfs, _ = dirs
    (ctx / "src" / "sub").mkdir(parents=True)
    (ctx / "src" / "sub" / "x.c").write_text("x")
    (ctx / "src" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(ctx / "src" / "run.sh", 0o750)
    os.symlink("run.sh", ctx / "src" / "alias")
    os.chown(ctx / "src" / "run.sh", 1234, 1234)
    os.utime(ctx / "src" / "run.sh", ns=(10**18, 10**18))
    (ctx / "a.txt").write_text("A")
    (ctx / "b.txt").write_text("B")
    os.link(ctx / "src" / "sub" / "x.c", ctx / "src" / "hard")

    do_copy(ctx, rootfs, ["src"], "/app")                       # a dir: its contents
    got = listing(rootfs / "app")
    assert set(got) == {"sub", "sub/x.c", "run.sh", "alias", "hard"}
    app = rootfs / "app"
    assert os.stat(app / "hard").st_ino == os.stat(app / "sub" / "x.c").st_ino  # a hard link
    assert got["run.sh"][:4] == ("file", 0o750, 0, 0)            # owner 0:0, mode kept
    assert got["alias"][0::4] == ("link", "run.sh")               # a symlink as a symlink
    assert os.stat(rootfs / "app" / "run.sh").st_mtime_ns == 10**18   # mtime kept
    assert stat.S_IMODE(os.stat(rootfs / "app").st_mode) == 0o755

    do_copy(ctx, rootfs, ["a.txt"], "/opt/deep/new")            # a file to a new name
    assert (rootfs / "opt" / "deep" / "new").read_text() == "A"
    assert stat.S_IMODE(os.stat(rootfs / "opt" / "deep").st_mode) == 0o755
    do_copy(ctx, rootfs, ["a.txt"], "/opt")                      # into an existing dir
    assert (rootfs / "opt" / "a.txt").read_text() == "A"
    do_copy(ctx, rootfs, ["*.txt"], "rel/", workdir="/w")        # a glob, workdir-relative
    assert sorted(os.listdir(rootfs / "w" / "rel")) == ["a.txt", "b.txt"]
    with pytest.raises(BuildError, match="must be a directory and end with a /"):
        do_copy(ctx, rootfs, ["*.txt"], "/one")

    do_copy(ctx, rootfs, ["src"], "/owned/", chown="app:staff", chmod="640")
    got = listing(rootfs / "owned")
    assert got["run.sh"][:4] == ("file", 0o640, 1000, 50)
    assert got["sub"][:4] == ("dir", 0o640, 1000, 50)
    assert os.lstat(rootfs / "owned" / "alias").st_uid == 1000
    assert os.stat(rootfs / "owned").st_uid == 1000              # the dir it made
    do_copy(ctx, rootfs, ["a.txt"], "/n/", chown=(7, 8))
    assert (os.stat(rootfs / "n" / "a.txt").st_uid, os.stat(rootfs / "n" / "a.txt").st_gid) \
        == (7, 8)
    with pytest.raises(BuildError, match="unable to find user nobody"):
        do_copy(ctx, rootfs, ["a.txt"], "/n/", chown="nobody")


def _tar(members, compress=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return {None: lambda b: b, "gz": gzip.compress, "bz2": bz2.compress,
            "xz": lzma.compress}[compress](raw)


def _member(name, data=None, kind=tarfile.REGTYPE, link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid = kind, link, mode, 33
    info.mtime = 1_000_000
    if data is not None:
        info.size = len(data)
    return info, data


@pytest.mark.parametrize("compress", [None, "gz", "bz2", "xz"])
def test_add_extracts_archives(dirs, compress):
    ctx, rootfs, _ = dirs
    (ctx / "a.tar").write_bytes(_tar([_member("top/f", b"F"),
                                      _member("top/l", kind=tarfile.SYMTYPE, link="f")],
                                     compress))
    do_copy(ctx, rootfs, ["a.tar"], "/x", keyword="ADD")
    assert (rootfs / "x" / "top" / "f").read_bytes() == b"F"
    assert os.readlink(rootfs / "x" / "top" / "l") == "f"
    assert os.stat(rootfs / "x" / "top" / "f").st_uid == 33      # the archive's owner
    # COPY never extracts
    do_copy(ctx, rootfs, ["a.tar"], "/y/")
    assert (rootfs / "y" / "a.tar").read_bytes() == (ctx / "a.tar").read_bytes()


def test_add_non_archive_copied(dirs):
    ctx, rootfs, _ = dirs
    (ctx / "notes.gz").write_bytes(gzip.compress(b"just text, not a tar"))
    (ctx / "plain").write_text("plain")
    do_copy(ctx, rootfs, ["notes.gz", "plain"], "/d/", keyword="ADD")
    assert gzip.decompress((rootfs / "d" / "notes.gz").read_bytes()) == b"just text, not a tar"
    assert (rootfs / "d" / "plain").read_text() == "plain"
    with pytest.raises(BuildError, match="ADD from a URL is not supported"):
        do_copy(ctx, rootfs, ["https://example.com/a.tgz"], "/d/", keyword="ADD")


# ------------------------------------------------------------ hostile contexts

def test_symlink_to_shadow_refused(dirs):
    ctx, rootfs, _ = dirs
    os.symlink(SHADOW, ctx / "evil")
    # control: a host path lookup follows it to the host's shadow
    with open(ctx / "evil", "rb") as f, open(SHADOW, "rb") as g:
        assert f.read() == g.read()
    with pytest.raises(BuildError, match="a symlink leads outside the build context"):
        do_copy(ctx, rootfs, ["evil"], "/")
    # inside a copied directory it is copied as the symlink it is
    do_copy(ctx, rootfs, ["."], "/c/")
    assert os.readlink(rootfs / "c" / "evil") == SHADOW
    assert not (rootfs / "etc" / "shadow").exists()


def test_dotdot_refused(dirs, tmp_path):
    ctx, rootfs, _ = dirs
    (tmp_path / "x").write_text("outside the context")
    assert (ctx / ".." / "x").read_text() == "outside the context"   # control
    for arg in ("../x", "sub/../../x", "/../x"):
        with pytest.raises(BuildError, match="outside the build context"):
            do_copy(ctx, rootfs, [arg], "/")
    assert not (rootfs / "x").exists()


def test_symlinked_parent_refused(dirs):
    ctx, rootfs, _ = dirs
    os.symlink("/etc", ctx / "lnk")
    os.symlink("../..", ctx / "up")
    assert os.path.exists(ctx / "lnk" / "passwd")                   # control
    for arg in ("lnk/shadow", "lnk/passwd", "up/etc/passwd", "lnk/*"):
        with pytest.raises(BuildError, match="outside the build context"):
            do_copy(ctx, rootfs, [arg], "/got/")
    assert not (rootfs / "got").exists()


def test_ignored_files_invisible(dirs):
    ctx, rootfs, _ = dirs

    class Ignore:
        def ignored(self, rel):
            return rel == "secret"

        def may_include_below(self, rel):
            return False

    (ctx / "secret").write_text("s")
    (ctx / "kept").write_text("k")
    do_copy(ctx, rootfs, ["."], "/c/", matcher=Ignore())
    assert sorted(os.listdir(rootfs / "c")) == ["kept"]
    with pytest.raises(BuildError, match="not found"):
        do_copy(ctx, rootfs, ["secret"], "/c/", matcher=Ignore())


def test_copy_from_hostile_stage(dirs, tmp_path):
    ctx, rootfs, _ = dirs
    stage = tmp_path / "stage"
    (stage / "etc").mkdir(parents=True)
    (stage / "etc" / "shadow").write_text("the stage's own")
    os.symlink(SHADOW, stage / "abs")
    os.symlink("../../../../../etc", stage / "up")
    (stage / "bin").mkdir()
    os.symlink("/etc", stage / "bin" / "etclink")
    with Tree.rootfs(str(stage)) as t:
        copying.copy(t, t.sources(["/abs", "up/shadow"]), str(rootfs), "/from/")
        copying.copy(t, t.sources(["/bin"]), str(rootfs), "/b/")
    assert (rootfs / "from" / "abs").read_text() == "the stage's own"
    assert (rootfs / "from" / "shadow").read_text() == "the stage's own"
    assert os.readlink(rootfs / "b" / "etclink") == "/etc"        # copied, not entered


# ------------------------------------------------------------ hostile destination rootfs

def test_dest_symlinks_stay_in_rootfs(dirs):
    ctx, rootfs, host = dirs
    (ctx / "a.txt").write_text("A")
    (ctx / "tree" / "sub").mkdir(parents=True)
    (ctx / "tree" / "sub" / "x").write_text("X")
    (host / "victim").write_text("host's")
    os.symlink(str(host), rootfs / "opt")                  # a dir symlink to a host path
    os.symlink(str(host / "victim"), rootfs / "etc" / "motd")   # a file symlink
    (rootfs / "app").mkdir()
    os.symlink(str(host), rootfs / "app" / "sub")          # in the way of a copied dir

    # control: a host path write through any of them lands in host/
    assert os.path.realpath(rootfs / "opt" / "a.txt") == str(host / "a.txt")

    do_copy(ctx, rootfs, ["a.txt"], "/opt/")
    do_copy(ctx, rootfs, ["a.txt"], "/etc/motd")
    do_copy(ctx, rootfs, ["tree"], "/app")
    do_copy(ctx, rootfs, ["a.txt"], "/opt/made/deeper/")
    assert sorted(os.listdir(host)) == ["victim"]
    assert (host / "victim").read_text() == "host's"
    inside = rootfs / str(host).lstrip("/")
    assert (inside / "a.txt").read_text() == "A"               # /opt resolved in root
    assert (inside / "made" / "deeper" / "a.txt").read_text() == "A"
    assert not os.path.islink(rootfs / "etc" / "motd")
    assert (rootfs / "etc" / "motd").read_text() == "A"
    assert (rootfs / "app" / "sub" / "x").read_text() == "X"
    assert not os.path.islink(rootfs / "app" / "sub")


def test_dest_dotdot_stays_in_rootfs(dirs, tmp_path):
    ctx, rootfs, _ = dirs
    (ctx / "a.txt").write_text("A")
    # a dangling relative symlink climbing out: made inside, at the rootfs's /out
    os.symlink("../../../../../../../../out", rootfs / "etc" / "up")
    assert os.path.realpath(rootfs / "etc" / "up") == "/out"     # control: the host's /out
    do_copy(ctx, rootfs, ["a.txt"], "/etc/up/")
    assert (rootfs / "out" / "a.txt").read_text() == "A"
    assert not os.path.exists("/out/a.txt")
    do_copy(ctx, rootfs, ["a.txt"], "../../../../escaped", workdir="/w")
    assert (rootfs / "escaped").read_text() == "A"
    assert not (tmp_path / "escaped").exists()


# ------------------------------------------------------------ hostile archives

def _hostile_members(host):
    return [
        _member("link", kind=tarfile.SYMTYPE, link=str(host)),
        _member("link/pwned", b"through the symlink"),
        _member("abs", kind=tarfile.SYMTYPE, link="/"),
        _member("abs" + str(host) + "/pwned2", b"through an absolute path"),
    ]


def test_hostile_tar_stays_in_dest(dirs, tmp_path):
    ctx, rootfs, host = dirs
    data = _tar(_hostile_members(host), "gz")
    # control: an unguarded extraction writes into host/
    victim = tmp_path / "unguarded"
    victim.mkdir()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        try:
            tf.extractall(victim, filter="fully_trusted")
        except TypeError:  # a Python without extraction filters
            tf.extractall(victim)
    assert (host / "pwned").exists()
    os.unlink(host / "pwned")
    os.unlink(host / "pwned2")

    (ctx / "evil.tgz").write_bytes(data)
    do_copy(ctx, rootfs, ["evil.tgz"], "/x/", keyword="ADD")
    assert os.listdir(host) == []
    inside = rootfs / "x" / str(host).lstrip("/")
    assert (inside / "pwned").read_bytes() == b"through the symlink"
    assert (inside / "pwned2").read_bytes() == b"through an absolute path"


@pytest.mark.parametrize("name", ["../../escape", "a/../../escape"])
def test_dotdot_tar_refused(dirs, tmp_path, name):
    ctx, rootfs, _ = dirs
    (ctx / "evil.tar").write_bytes(_tar([_member(name, b"E")]))
    with pytest.raises(BuildError, match="escapes"):
        do_copy(ctx, rootfs, ["evil.tar"], "/x/", keyword="ADD")
    assert not (tmp_path / "escape").exists() and not (rootfs / "escape").exists()


def test_corrupt_archive(dirs):
    ctx, rootfs, _ = dirs
    data = _tar([_member("f", os.urandom(1 << 18))], "gz")
    (ctx / "cut.tgz").write_bytes(data[:len(data) // 2])     # a tar header, then torn
    with pytest.raises(BuildError, match="ADD cut.tgz"):
        do_copy(ctx, rootfs, ["cut.tgz"], "/x/", keyword="ADD")
    # torn before a whole header: not told an archive, copied as the file it is
    (ctx / "tiny.tgz").write_bytes(data[:40])
    do_copy(ctx, rootfs, ["tiny.tgz"], "/y/", keyword="ADD")
    assert (rootfs / "y" / "tiny.tgz").read_bytes() == data[:40]


def test_fifo_in_dest_path_not_opened(dirs):
    ctx, rootfs, _ = dirs
    (ctx / "a.txt").write_text("A")
    os.mkfifo(rootfs / "etc" / "fifo")
    do_copy(ctx, rootfs, ["a.txt"], "/etc/fifo")     # replaced, never opened (no hang)
    assert (rootfs / "etc" / "fifo").read_text() == "A"
    shutil.rmtree(rootfs / "etc")
