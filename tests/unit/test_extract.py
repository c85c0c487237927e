"""Safe layer extraction (bocker.image.extract) into plain temp dirs.

Hypothesis builds hostile layers (.. components, absolute paths, symlinks
out of the rootfs planted by an earlier layer, hard links to outside
targets) and checks that nothing outside the rootfs ever changes.
"""
import gzip
import hashlib
import io
import os
import stat
import tarfile

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bocker.image import extract
from bocker.image.extract import LayerError


def make_tar(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, kind, extra) with kind in file/dir/sym/link/fifo/chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for entry in entries:
            name, kind = entry[0], entry[1]
            extra = entry[2] if len(entry) > 2 else None
            info = tarfile.TarInfo(name)
            info.mtime = 1_000_000_000
            if kind == "file":
                data = extra if isinstance(extra, bytes) else (extra or name).encode()
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == "fifo":
                info.type, info.mode = tarfile.FIFOTYPE, 0o600
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tf.addfile(info)
    return buf.getvalue()


def apply(rootfs, data):
    return extract.extract(io.BytesIO(data), str(rootfs))


def _observe(path):
    """Everything observable about one path, never following a symlink."""
    st_ = os.lstat(path)
    item = (stat.S_IFMT(st_.st_mode), st_.st_mode & 0o7777, st_.st_nlink,
            st_.st_uid, st_.st_gid, st_.st_size, st_.st_mtime_ns)
    if stat.S_ISLNK(st_.st_mode):
        item += (os.readlink(path),)
    else:
        item += (tuple(sorted((x, os.getxattr(path, x, follow_symlinks=False))
                              for x in os.listxattr(path, follow_symlinks=False))),)
        if stat.S_ISREG(st_.st_mode):
            with open(path, "rb") as f:
                item += (f.read(),)
    return item


def snapshot_tree(top, skip=None):
    """Everything observable about a tree (top included): names, types, modes,
    owners, sizes, mtimes, xattrs, contents, link targets.

    skip: one path below top left out with all it holds (the target rootfs).
    """
    out = {".": _observe(top)}
    for dirpath, dirnames, filenames in os.walk(top):
        if skip is not None:
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != str(skip)]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if skip is not None and path == str(skip):
                continue
            out[os.path.relpath(path, top)] = _observe(path)
    return out


def hostile_world(tmp):
    """tmp/outside (things to never touch), tmp/rootfs (the target): returns both."""
    outside = tmp / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "victim").write_text("precious")
    (outside / "dir" / "victim2").write_text("precious")
    os.symlink("victim", outside / "link")
    os.mkfifo(outside / "fifo")
    rootfs = tmp / "rootfs"
    rootfs.mkdir()
    return outside, rootfs


def test_snapshot_tree_sees_what_an_escape_would_change(tmp_path):
    """The never-escape checks below can fail: each kind of change outside shows."""
    outside, rootfs = hostile_world(tmp_path)
    base = snapshot_tree(tmp_path, skip=rootfs)
    (rootfs / "inside").write_text("fine")  # inside the target: not seen
    assert snapshot_tree(tmp_path, skip=rootfs) == base
    changes = [lambda: (tmp_path / "new").write_text(""),
               lambda: os.symlink("/", tmp_path / "rootfs2"),
               lambda: os.chmod(outside / "victim", 0o777),
               lambda: (outside / "victim").write_text("pwned!!!"),
               lambda: os.link(outside / "victim", outside / "dir" / "hard"),
               lambda: os.utime(outside / "dir", ns=(0, 0)),
               lambda: os.chmod(tmp_path, 0o711)]
    for change in changes:
        change()
        now = snapshot_tree(tmp_path, skip=rootfs)
        assert now != base
        base = now


@pytest.fixture
def world(tmp_path):
    """tmp/outside holds things a layer must never touch; tmp/rootfs is the target."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "victim").write_text("precious")
    (outside / "dir" / "victim2").write_text("precious")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    return tmp_path, outside, rootfs


# ------------------------------------------------------------ well-formed layers

def test_plain_gzip_zstd_and_diff_id(world):
    _, _, rootfs = world
    data = make_tar([("etc", "dir"), ("etc/hostname", "file", b"box\n")])
    want = "sha256:" + hashlib.sha256(data).hexdigest()
    for blob in (data, gzip.compress(data), zstandard.ZstdCompressor().compress(data)):
        diff_id, size = apply(rootfs, blob)
        assert diff_id == want and size == len(data)
        assert (rootfs / "etc/hostname").read_bytes() == b"box\n"


def test_metadata(world):
    _, _, rootfs = world
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, mode, kind in [("bin", 0o755, tarfile.DIRTYPE), ("tmp", 0o1777, tarfile.DIRTYPE),
                                 ("bin/su", 0o4755, tarfile.REGTYPE),
                                 ("bin/wall", 0o2755, tarfile.REGTYPE)]:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, 1_234_567_890
            info.uid, info.gid = 1000, 1001
            if name == "bin/su":
                info.pax_headers = {"SCHILY.xattr.user.bocker": "yes",
                                    "SCHILY.xattr.user.bin": "\udcff\x00\x01"}
            tf.addfile(info, io.BytesIO(b""))
        info = tarfile.TarInfo("bin/sh")
        info.type, info.linkname = tarfile.SYMTYPE, "busybox"
        tf.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = 3, 0o755
        tf.addfile(info, io.BytesIO(b"elf"))
        info = tarfile.TarInfo("bin/ash")
        info.type, info.linkname = tarfile.LNKTYPE, "bin/busybox"
        tf.addfile(info)
        info = tarfile.TarInfo("run/fifo")
        info.type, info.mode = tarfile.FIFOTYPE, 0o620
        tf.addfile(info)
        info = tarfile.TarInfo("dev/null")
        info.type, info.mode, info.devmajor, info.devminor = tarfile.CHRTYPE, 0o666, 1, 3
        tf.addfile(info)
    apply(rootfs, buf.getvalue())
    assert stat.S_IMODE(os.stat(rootfs / "bin/su").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(rootfs / "bin/wall").st_mode) == 0o2755
    assert stat.S_IMODE(os.stat(rootfs / "tmp").st_mode) == 0o1777
    assert os.stat(rootfs / "bin").st_mtime == 1_234_567_890
    assert os.stat(rootfs / "bin/su").st_mtime == 1_234_567_890
    assert os.readlink(rootfs / "bin/sh") == "busybox"
    assert os.stat(rootfs / "bin/ash").st_ino == os.stat(rootfs / "bin/busybox").st_ino
    assert stat.S_ISFIFO(os.lstat(rootfs / "run/fifo").st_mode)
    assert stat.S_IMODE(os.lstat(rootfs / "run/fifo").st_mode) == 0o620
    if os.geteuid() == 0:
        su = os.stat(rootfs / "bin/su")
        assert (su.st_uid, su.st_gid) == (1000, 1001)
        assert os.stat(rootfs / "dev/null").st_rdev == os.makedev(1, 3)
        assert os.getxattr(rootfs / "bin/su", "user.bocker") == b"yes"
        assert os.getxattr(rootfs / "bin/su", "user.bin") == b"\xff\x00\x01"


def test_whiteouts(world):
    _, _, rootfs = world
    apply(rootfs, make_tar([
        ("a", "dir"), ("a/file", "file"), ("a/keep", "file"), ("a/link", "sym", "file"),
        ("a/sub", "dir"), ("a/sub/deep", "file"),
        ("opq", "dir"), ("opq/old1", "file"), ("opq/olddir", "dir"), ("opq/olddir/x", "file"),
    ]))
    apply(rootfs, make_tar([
        ("a/.wh.file", "file", b""), ("a/.wh.link", "file", b""), ("a/.wh.sub", "file", b""),
        ("a/.wh.never-existed", "file", b""),
        ("opq", "dir"), ("opq/new", "file"), ("opq/.wh..wh..opq", "file", b""),
        ("opq/new2", "file"),
    ]))
    assert sorted(os.listdir(rootfs / "a")) == ["keep"]
    assert sorted(os.listdir(rootfs / "opq")) == ["new", "new2"]


def test_whiteout_spares_same_layer(world):
    _, _, rootfs = world
    apply(rootfs, make_tar([("x", "file", b"new"), (".wh.x", "file", b"")]))
    assert (rootfs / "x").read_bytes() == b"new"


def test_replace_types(world):
    _, _, rootfs = world
    apply(rootfs, make_tar([("d", "dir"), ("d/f", "file"), ("f", "file"), ("s", "sym", "f")]))
    apply(rootfs, make_tar([("d", "file", b"now a file"), ("f", "dir"), ("s", "file", b"x")]))
    assert (rootfs / "d").read_bytes() == b"now a file"
    assert (rootfs / "f").is_dir()
    assert not (rootfs / "s").is_symlink()


def test_corrupt_stream(world):
    _, _, rootfs = world
    data = gzip.compress(make_tar([("f", "file", b"x" * 100000)]))
    with pytest.raises(LayerError):
        apply(rootfs, data[: len(data) // 2])
    with pytest.raises(LayerError):
        apply(rootfs, b"\x28\xb5\x2f\xfd" + b"garbage" * 100)


# ------------------------------------------------------------ hostile layers

def test_dotdot_rejected(world):
    tmp, outside, rootfs = world
    before = snapshot_tree(tmp)
    for name in ("../outside/evil", "a/../../outside/evil", "./../x"):
        with pytest.raises(LayerError):
            apply(rootfs, make_tar([(name, "file")]))
    with pytest.raises(LayerError):
        apply(rootfs, make_tar([("x", "link", "../outside/victim")]))
    assert snapshot_tree(tmp) == before


def test_absolute_contained(world):
    tmp, outside, rootfs = world
    before = snapshot_tree(outside)
    apply(rootfs, make_tar([(f"{outside}/victim", "file", b"pwned")]))
    assert snapshot_tree(outside) == before
    assert (rootfs / str(outside).lstrip("/") / "victim").read_bytes() == b"pwned"


@pytest.mark.parametrize("target", ["OUT", "OUT/dir", "../../../..", "/", "..", "../outside"])
def test_symlink_from_earlier_layer_contained(world, target):
    tmp, outside, rootfs = world
    target = target.replace("OUT", str(outside))
    apply(rootfs, make_tar([("evil", "sym", target)]))
    before = snapshot_tree(outside)
    apply(rootfs, make_tar([("evil/victim", "file", b"pwned"),
                            ("evil/dir/victim2", "file", b"pwned"),
                            ("evil/.wh.victim", "file", b""),
                            ("evil/new", "dir"), ("evil/new/f", "file", b"pwned")]))
    assert snapshot_tree(outside) == before
    assert os.path.islink(rootfs / "evil")


def test_symlink_loop(world):
    _, _, rootfs = world
    apply(rootfs, make_tar([("a", "sym", "b"), ("b", "sym", "a")]))
    with pytest.raises(LayerError):
        apply(rootfs, make_tar([("a/x", "file")]))


def test_hardlink_to_symlink_outside(world):
    tmp, outside, rootfs = world
    before = snapshot_tree(outside)
    apply(rootfs, make_tar([("s", "sym", f"{outside}/victim"), ("h", "link", "s")]))
    assert os.path.islink(rootfs / "h")  # links the symlink itself
    # An absolute link target is resolved inside the rootfs, where it does not exist.
    with pytest.raises(LayerError):
        apply(rootfs, make_tar([("h2", "link", f"{outside}/victim")]))
    assert snapshot_tree(outside) == before


def test_hardlink_through_planted_symlink(world):
    tmp, outside, rootfs = world
    apply(rootfs, make_tar([("evil", "sym", str(outside))]))
    before = snapshot_tree(outside)
    with pytest.raises(LayerError):  # evil/victim resolves inside: missing
        apply(rootfs, make_tar([("h", "link", "evil/victim")]))
    assert snapshot_tree(outside) == before


# Hostile archives from a small alphabet of dangerous pieces.
_pieces = st.sampled_from(["a", "b", "evil", "..", ".", "", "victim", "dir", "OUT",
                           ".wh.victim", ".wh..wh..opq", "etc", "x"])
_names = st.lists(_pieces, min_size=1, max_size=5).map("/".join)
_targets = st.one_of(_names, st.sampled_from(["/", "OUT", "OUT/dir", "../../..", "/etc"]))
_entries = st.lists(st.one_of(
    st.tuples(_names, st.just("file")),
    st.tuples(_names, st.just("dir")),
    st.tuples(_names, st.just("sym"), _targets),
    st.tuples(_names, st.just("link"), _targets),
    st.tuples(_names, st.just("fifo")),
), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(_entries, min_size=1, max_size=3))
def test_hostile_layers_never_escape(tmp_path_factory, stack):
    """Refused or extracted, all the same: nothing outside tmp/rootfs changed."""
    tmp = tmp_path_factory.mktemp("hostile")
    outside, rootfs = hostile_world(tmp)
    before = snapshot_tree(tmp, skip=rootfs)
    for entries in stack:
        entries = [tuple(str(p).replace("OUT", str(outside)) for p in e) for e in entries]
        try:
            apply(rootfs, make_tar(entries))
        except LayerError:
            pass
        assert snapshot_tree(tmp, skip=rootfs) == before
    assert sorted(os.listdir(tmp)) == ["outside", "rootfs"]


_NS_LIMIT = 2 ** 62  # what the extractor keeps an mtime within, in ns


@pytest.mark.parametrize("pax, check", [
    ({"mtime": "1e30"}, lambda st: st.st_mtime_ns > 0),
    ({"mtime": "-1e30"}, lambda st: st.st_mtime_ns < 0),
    ({"mtime": "inf"}, lambda st: st.st_mtime_ns > 0),
    ({"mtime": "nan"}, lambda st: st.st_mtime_ns == 0),
])
def test_absurd_pax_mtimes_are_clamped(world, pax, check):
    tmp, _, rootfs = world
    before = snapshot_tree(tmp, skip=rootfs)
    data = _one_file_layer(pax)
    assert apply(rootfs, data) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    st_ = os.stat(rootfs / "f")
    assert (rootfs / "f").read_bytes() == b"x"
    assert abs(st_.st_mtime_ns) <= _NS_LIMIT and check(st_)
    assert snapshot_tree(tmp, skip=rootfs) == before


@pytest.mark.parametrize("pax, field", [
    ({"uid": "99999999999999999999"}, "uid"), ({"gid": "-5"}, "gid"),
])
def test_absurd_pax_owners(world, pax, field):
    """Root chowns, and an owner out of range is refused; without root
    nothing is chowned, so the same layer applies (owned by us)."""
    tmp, _, rootfs = world
    before = snapshot_tree(tmp, skip=rootfs)
    data = _one_file_layer(pax)
    if os.geteuid() == 0:
        with pytest.raises(LayerError, match=f"layer entry 'f': {field}"):
            apply(rootfs, data)
    else:
        assert apply(rootfs, data)[1] == len(data)
        assert os.stat(rootfs / "f").st_uid == os.geteuid()
    assert snapshot_tree(tmp, skip=rootfs) == before


def test_absurd_pax_size(world):
    """A negative size is no size: at most the bytes given end up in f."""
    tmp, _, rootfs = world
    before = snapshot_tree(tmp, skip=rootfs)
    try:
        apply(rootfs, _one_file_layer({"size": "-1"}))
    except LayerError as e:
        assert "'f'" in str(e) or "corrupt layer" in str(e)
    else:
        assert b"x".startswith((rootfs / "f").read_bytes())
    assert snapshot_tree(tmp, skip=rootfs) == before


def _one_file_layer(pax):
    """A PAX layer of one 1-byte file 'f' whose header carries pax."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("f")
        info.size = 1
        info.pax_headers = pax
        tf.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def test_absurd_device_numbers(world):
    """Root makes device nodes, and numbers mknod cannot take are refused;
    without root devices are skipped.  Never a node with numbers cut short."""
    tmp, _, rootfs = world
    before = snapshot_tree(tmp, skip=rootfs)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("dev/x")
        info.type, info.devmajor, info.devminor = tarfile.BLKTYPE, 0o7777777, 0o7777777
        tf.addfile(info)
    if os.geteuid() == 0:
        with pytest.raises(LayerError, match="layer entry 'dev/x'"):
            apply(rootfs, buf.getvalue())
    else:
        assert apply(rootfs, buf.getvalue())[1] == len(buf.getvalue())
    assert not os.path.lexists(rootfs / "dev" / "x")
    assert snapshot_tree(tmp, skip=rootfs) == before


_COMPRESSED = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([b"", *_COMPRESSED]), st.binary(max_size=3000), st.integers(0, 4000))
def test_garbage_is_refused_cleanly(tmp_path_factory, prefix, junk, cut):
    """Random bytes, or a real layer cut short or with bytes flipped:
    LayerError, or a layer applied whose diff ID is the hash of the tar
    read; nothing outside tmp/rootfs changes either way."""
    tmp = tmp_path_factory.mktemp("garbage")
    _, rootfs = hostile_world(tmp)
    before = snapshot_tree(tmp, skip=rootfs)
    real = make_tar([("d", "dir"), ("d/f", "file", b"y" * 1000), ("s", "sym", "d/f"),
                     ("up", "sym", "../outside"), ("abs", "sym", "/"),
                     ("h", "link", "d/f")])
    for data in (prefix + junk, real[:cut], real[:cut] + junk + real[cut:]):
        try:
            diff_id, size = apply(rootfs, data)
        except LayerError as e:
            assert str(e)
            continue
        if data.startswith(_COMPRESSED):
            assert diff_id.startswith("sha256:") and len(diff_id) == 71 and size >= 0
        else:       # read as a plain tar, to its end
            assert (diff_id, size) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
        assert snapshot_tree(tmp, skip=rootfs) == before
