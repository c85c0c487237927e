"""bocker.image.layerdiff: a layer tar of one tree over another, in temp dirs.

The round trip is the check that matters: the layer of upper over lower,
applied by the extractor a pull uses onto a copy of lower, gives upper
(hypothesis over small random trees).  Beside it: whiteouts and opaque
directories, untouched files left out, hard links kept, the same trees
giving the same bytes, and symlinks never followed.
"""
import io
import os
import shutil
import stat
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bocker.image import extract, layerdiff

ROOT = os.geteuid() == 0
T = 1_600_000_000


# ---------------------------------------------------------------- helpers

def layer(upper, lower=None):
    buf = io.BytesIO()
    layerdiff.write(buf, str(upper), None if lower is None else str(lower))
    return buf.getvalue()


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getmembers()


def names(data):
    return [m.name for m in members(data)]


def build(top, spec):
    """Make the tree spec below top: {name: ("file", data, mode, uid) |
    ("dir", {...}, mode) | ("sym", target)}; every mtime T."""
    os.makedirs(top, exist_ok=True)
    for name, node in spec.items():
        path = os.path.join(top, name)
        if node[0] == "file":
            with open(path, "wb") as f:
                f.write(node[1])
            os.chmod(path, node[2])
            if ROOT:
                os.chown(path, node[3], node[3])
        elif node[0] == "dir":
            os.mkdir(path)
            build(path, node[1])
            os.chmod(path, node[2])
        else:
            os.symlink(node[1], path)
        os.utime(path, (T, T), follow_symlinks=False)
    os.utime(top, (T, T))


def snapshot(top):
    """Everything a layer carries of the tree at top: {relpath: (type, mode,
    owner, mtime, content or target)} and its hard link groups."""
    out, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            s = os.lstat(path)
            kind = stat.S_IFMT(s.st_mode)
            if stat.S_ISREG(s.st_mode):
                with open(path, "rb") as f:
                    body = f.read()
                inodes.setdefault(s.st_ino, set()).add(rel)
            elif stat.S_ISLNK(s.st_mode):
                body = os.readlink(path)
            else:
                body = None
            mode = None if stat.S_ISLNK(s.st_mode) else stat.S_IMODE(s.st_mode)
            owner = (s.st_uid, s.st_gid) if ROOT else None
            out[rel] = (kind, mode, owner, int(s.st_mtime), body)
    return out, sorted(sorted(g) for g in inodes.values() if len(g) > 1)


def apply(data, lower, dest):
    shutil.copytree(lower, dest, symlinks=True)
    extract.extract(io.BytesIO(data), str(dest))


# ---------------------------------------------------------------- round trip

_NAMES = st.sampled_from(["a", "b", "c", ".d", "é"])
_FILE = st.tuples(st.just("file"), st.binary(max_size=40), st.sampled_from([0o644, 0o755, 0o600]),
                  st.sampled_from([0, 1000]))
_SYM = st.tuples(st.just("sym"), st.sampled_from(["a", "../../etc", "/etc/passwd", "b/c"]))
_TREE = st.recursive(
    st.dictionaries(_NAMES, st.one_of(_FILE, _SYM), max_size=3),
    lambda kids: st.dictionaries(_NAMES, st.one_of(
        _FILE, _SYM, st.tuples(st.just("dir"), kids, st.sampled_from([0o755, 0o700]))),
        max_size=3),
    max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lower_spec=_TREE, upper_spec=_TREE)
def test_layer_over_lower_applied_gives_upper(tmp_path_factory, lower_spec, upper_spec):
    tmp = tmp_path_factory.mktemp("rt")
    build(tmp / "lower", lower_spec)
    build(tmp / "upper", upper_spec)
    data = layer(tmp / "upper", tmp / "lower")
    apply(data, tmp / "lower", tmp / "out")
    assert snapshot(tmp / "out") == snapshot(tmp / "upper")
    # and from nothing: the whole of upper
    os.mkdir(tmp / "empty")
    extract.extract(io.BytesIO(layer(tmp / "upper")), str(tmp / "empty"))
    assert snapshot(tmp / "empty") == snapshot(tmp / "upper")
    shutil.rmtree(tmp)


def mutate(spec, data):
    """upper drawn from lower: each entry kept, dropped, replaced, or (a
    directory) its contents mutated or swapped for entries of other names."""
    out = {}
    for name, node in spec.items():
        how = data.draw(st.sampled_from(["keep", "drop", "replace", "inside", "swap"]))
        if how == "keep" or (how in ("inside", "swap") and node[0] != "dir"):
            out[name] = node
        elif how == "replace":
            out[name] = data.draw(st.one_of(_FILE, _SYM))
        elif how == "inside":
            out[name] = ("dir", mutate(node[1], data), node[2])
        elif how == "swap":
            out[name] = ("dir", data.draw(st.dictionaries(st.sampled_from(["x", "y"]), _FILE,
                                                          max_size=2)), node[2])
    return out


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lower_spec=_TREE, data=st.data())
def test_layer_over_a_mutated_lower_applied_gives_upper(tmp_path_factory, lower_spec, data):
    tmp = tmp_path_factory.mktemp("mut")
    build(tmp / "lower", lower_spec)
    build(tmp / "upper", mutate(lower_spec, data))
    apply(layer(tmp / "upper", tmp / "lower"), tmp / "lower", tmp / "out")
    assert snapshot(tmp / "out") == snapshot(tmp / "upper")
    shutil.rmtree(tmp)


# ---------------------------------------------------------------- whiteouts, minimality

def clone(src, dst):
    """dst: the tree src with every file and symlink hard-linked (the same
    inodes, as a btrfs snapshot keeps them) and its directories remade."""
    os.mkdir(dst)
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(s) and not os.path.islink(s):
            clone(s, d)
        else:
            os.link(s, d, follow_symlinks=False)
    shutil.copystat(src, dst)


def test_only_what_changed_and_whiteouts(tmp_path):
    build(tmp_path / "lower", {
        "etc": ("dir", {"keep": ("file", b"k", 0o644, 0), "edit": ("file", b"old", 0o644, 0),
                        "rm": ("file", b"x", 0o644, 0)}, 0o755),
        "usr": ("dir", {"bin": ("dir", {"tool": ("file", b"t", 0o755, 0)}, 0o755)}, 0o755),
        "var": ("dir", {"cache": ("dir", {"x": ("file", b"1", 0o644, 0),
                                          "y": ("file", b"2", 0o644, 0)}, 0o755)}, 0o755),
    })
    clone(tmp_path / "lower", tmp_path / "upper")
    up = tmp_path / "upper"
    (up / "etc" / "edit.new").write_bytes(b"new")
    os.rename(up / "etc" / "edit.new", up / "etc" / "edit")     # a new inode, as a write
    os.unlink(up / "etc" / "rm")
    shutil.rmtree(up / "var" / "cache")
    os.mkdir(up / "var" / "cache")                                # replaced: opaque
    (up / "var" / "cache" / "z").write_bytes(b"3")
    os.utime(up / "var" / "cache", (T, T))
    data = layer(up, tmp_path / "lower")
    assert names(data) == ["etc", "etc/.wh.rm", "etc/edit", "var", "var/cache",
                           "var/cache/.wh..wh..opq", "var/cache/z"]
    wh = {m.name: m for m in members(data)}["etc/.wh.rm"]
    assert wh.isreg() and wh.size == 0
    apply(data, tmp_path / "lower", tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(up)


def test_type_changes(tmp_path):
    build(tmp_path / "lower", {"d2f": ("dir", {"x": ("file", b"x", 0o644, 0)}, 0o755),
                               "f2d": ("file", b"f", 0o644, 0),
                               "s2d": ("sym", "/etc")})
    build(tmp_path / "upper", {"d2f": ("file", b"now a file", 0o644, 0),
                               "f2d": ("dir", {"y": ("file", b"y", 0o644, 0)}, 0o755),
                               "s2d": ("dir", {"z": ("file", b"z", 0o644, 0)}, 0o755)})
    data = layer(tmp_path / "upper", tmp_path / "lower")
    apply(data, tmp_path / "lower", tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tmp_path / "upper")


def test_hard_links_kept_within_the_layer(tmp_path):
    build(tmp_path / "upper", {"a": ("file", b"shared", 0o644, 0),
                               "d": ("dir", {}, 0o755)})
    os.link(tmp_path / "upper" / "a", tmp_path / "upper" / "d" / "b")
    got = {m.name: m for m in members(layer(tmp_path / "upper"))}
    assert got["a"].isreg() and got["a"].size == 6
    assert got["d/b"].islnk() and got["d/b"].linkname == "a"
    os.mkdir(tmp_path / "out")
    extract.extract(io.BytesIO(layer(tmp_path / "upper")), str(tmp_path / "out"))
    assert snapshot(tmp_path / "out") == snapshot(tmp_path / "upper")


# ---------------------------------------------------------------- determinism, format

SPEC = {"b": ("dir", {"z": ("file", b"1", 0o644, 0), "a": ("sym", "z")}, 0o755),
        "a": ("file", b"2" * 3000, 0o600, 1000), "c": ("dir", {}, 0o700),
        "ü-long-" + "n" * 120: ("file", b"", 0o644, 0)}


def test_same_trees_same_bytes(tmp_path):
    build(tmp_path / "one", SPEC)
    # made in the other order: another directory order, other inodes
    build(tmp_path / "two", dict(reversed(list(SPEC.items()))))
    first = layer(tmp_path / "one")
    assert first == layer(tmp_path / "one") == layer(tmp_path / "two")
    assert names(first) == sorted(names(first), key=lambda n: n.split("/"))
    for m in members(first):
        assert m.uname == "" and m.gname == ""
        assert not {"atime", "ctime", "mtime", "uname", "gname"} & set(m.pax_headers)
        assert m.mtime == T


def test_xattrs_of_a_layer_namespace_kept(tmp_path):
    build(tmp_path / "upper", {"f": ("file", b"x", 0o644, 0)})
    try:
        os.setxattr(tmp_path / "upper" / "f", "user.bocker", b"v1")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    (m,) = members(layer(tmp_path / "upper"))
    assert m.pax_headers.get("SCHILY.xattr.user.bocker") == "v1"


def test_special_files(tmp_path):
    build(tmp_path / "upper", {})
    os.mkfifo(tmp_path / "upper" / "fifo")
    want = {"fifo": tarfile.FIFOTYPE}
    if ROOT:
        os.mknod(tmp_path / "upper" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        want["null"] = tarfile.CHRTYPE
    got = {m.name: m for m in members(layer(tmp_path / "upper"))}
    assert {n: m.type for n, m in got.items()} == want
    if ROOT:
        assert (got["null"].devmajor, got["null"].devminor) == (1, 3)


# ---------------------------------------------------------------- hostile trees

def test_symlinks_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host secret")
    build(tmp_path / "lower", {"dir": ("dir", {"x": ("file", b"x", 0o644, 0)}, 0o755)})
    build(tmp_path / "upper", {"dir": ("sym", str(outside)), "evil": ("sym", str(outside)),
                               "file": ("sym", str(outside / "secret"))})
    data = layer(tmp_path / "upper", tmp_path / "lower")
    got = {m.name: m for m in members(data)}
    assert set(got) == {"dir", "evil", "file"}
    assert all(m.issym() for m in got.values())
    assert b"host secret" not in data
    assert got["dir"].linkname == str(outside)


# ---------------------------------------------------------------- the plan save and history follow

def test_plan_of_a_built_image_and_its_sizes(tmp_path):
    from bocker import state
    from bocker.image import history, layerplan

    paths = state.Paths(str(tmp_path))
    keys = {"base": "a" * 64, "from": "b" * 64, "copy": "c" * 64, "gone": "d" * 64}
    for what, key in keys.items():
        if what != "gone":
            os.makedirs(tmp_path / "buildcache" / key / "rootfs")
            state.write_json(str(tmp_path / "buildcache" / key / "step.json"),
                             {"instruction": "FROM x" if what == "from" else "COPY a /",
                              "size": 7 if what == "copy" else 1})
    record = {"id": "img_0123456789ab", "source": "build", "build": {"base": {"entry": keys["base"]}, "layers": [
        keys["from"], keys["copy"], "../../etc", keys["gone"]]}}
    layers = layerplan.plan(paths, record)
    assert [la.rootfs for la in layers] == [
        str(tmp_path / "buildcache" / keys["base"] / "rootfs"),
        str(tmp_path / "buildcache" / keys["copy"] / "rootfs"), None,
        str(tmp_path / "buildcache" / keys["gone"] / "rootfs")]
    assert history.layer_sizes(paths, record) == [1, 7, None, None]
    tops = layerplan.snapshots(paths, record["id"], layers)
    assert tops[2] is None and tops[-1] == str(tmp_path / "images" / record["id"] / "rootfs")
    assert history.layer_sizes(paths, {"id": record["id"]}) is None  # init: one squashed layer
    # committed into since: its steps are no longer what it holds
    assert layerplan.plan(paths, dict(record, source="commit")) == []


def test_saved_history_pairs_with_the_layers_written():
    from bocker.image.archive import _history

    steps = [{"created_by": "base"}, {"created_by": "ENV", "empty_layer": True},
             {"created_by": "RUN"}]
    record = {"history": steps}
    assert _history(record, "img_x", "T", 2, [0, 1]) == steps
    merged = _history(record, "img_x", "T", 2, [1])      # layer 0 gone: merged into 1
    assert [bool(h.get("empty_layer")) for h in merged] == [True, True, False]
    unpaired = _history(record, "img_x", "T", 3, [0, 1, 2])
    assert [h["created_by"] for h in unpaired if not h.get("empty_layer")] == [
        "bocker save img_x (layer 1 of 3)", "bocker save img_x (layer 2 of 3)",
        "bocker save img_x (layer 3 of 3)"]
    assert len(unpaired) == 6
