"""The digest validator, and the hostile manifests, configs and archives it
guards: nothing but sha256:<64 lowercase hex> may reach a path or URL."""
import hashlib
import io
import json
import os
import string
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.errors import BockerError, InvalidArgument
from bocker.image import archive, archive_source, digest, layer_store
from bocker.image import manifest as manifests
from bocker.image import platforms, reference, registry
from bocker.state import Paths

GOOD = "sha256:" + "ab" * 32
HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@given(HEX)
def test_accepts_sha256(hexd):
    assert digest.check("sha256:" + hexd) == "sha256:" + hexd
    assert digest.hex_of("sha256:" + hexd) == hexd
    assert digest.is_hex(hexd)


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(),
                 st.lists(st.text(max_size=3), max_size=2)))
def test_anything_else_is_refused_on_one_line(value):
    if isinstance(value, str) and len(value) == 71 and value.startswith("sha256:") \
            and all(c in "0123456789abcdef" for c in value[7:]):
        return
    with pytest.raises(digest.BadDigest) as info:
        digest.check(value)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert len(message) < 200


@given(HEX, st.sampled_from(["/", ".", "\n", "A", "g", " ", "\0", ":"]),
       st.integers(0, 63))
def test_one_bad_character_is_refused(hexd, bad, where):
    with pytest.raises(digest.BadDigest, match="expected sha256"):
        digest.check("sha256:" + hexd[:where] + bad + hexd[where + 1:])


@pytest.mark.parametrize("value", [
    "sha256:/var/bocker", "sha256:../../etc", "sha256:" + "AB" * 32, "sha256:" + "ab" * 31,
    "sha256:" + "ab" * 33, GOOD + "\n", " " + GOOD, "sha256" + "ab" * 32, "", "sha256:"])
def test_paths_and_near_misses(value):
    with pytest.raises(digest.BadDigest, match="expected sha256:<64 lowercase hex>"):
        digest.check(value)


@pytest.mark.parametrize("algo", ["sha512", "sha384", "blake3", "md5"])
def test_other_algorithms_refused_by_name(algo):
    with pytest.raises(digest.BadDigest, match=f"unsupported digest algorithm '{algo}'.*"
                                               "only sha256"):
        digest.check(f"{algo}:" + "ab" * 64)


def test_reference_refuses_other_algorithms():
    with pytest.raises(InvalidArgument, match="only sha256"):
        reference.parse("busybox@sha512:" + "ab" * 64)
    with pytest.raises(InvalidArgument):
        reference.parse("busybox@sha256:" + "AB" * 32)


def test_store_paths_take_only_digests_and_ids():
    paths = Paths("/nonexistent-root")
    with pytest.raises(digest.BadDigest):
        layer_store.rootfs(paths, "sha256:/var/bocker")
    with pytest.raises(digest.BadDigest):
        layer_store.chain_ids([GOOD, "sha256:../x"])
    assert layer_store.rootfs(paths, GOOD) == f"/nonexistent-root/layers/{'ab' * 32}/rootfs"
    for bad in ("../images", "img_../../../x", "img_0123456789ab\n", "img_0123456789AB", ""):
        with pytest.raises(InvalidArgument, match="invalid image ID"):
            paths.image(bad)
    with pytest.raises(InvalidArgument, match="invalid container ID"):
        paths.container("img_0123456789ab")  # an image ID is not a container's
    assert paths.container("ps_0123456789ab").endswith("/containers/ps_0123456789ab")


# ---------------------------------------------------------------- manifests, configs

def _config(diff_ids):
    return json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


@pytest.mark.parametrize("diff_id", ["sha256:/var/bocker", "sha256:../../..", 7, None,
                                     "sha512:" + "ab" * 64, "sha256:" + "AB" * 32])
def test_config_with_a_bad_diff_id(diff_id):
    with pytest.raises(digest.BadDigest, match="where: image config: .*diff_id"):
        manifests.parse_config(_config([GOOD, diff_id]), 2, "where")


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b'{"rootfs": []}',
                                 b'{"rootfs": {"diff_ids": "sha256:x"}}', b"\xff"])
def test_malformed_configs(raw):
    with pytest.raises(BockerError, match="malformed image config"):
        manifests.parse_config(raw, 1, "where")


@pytest.mark.parametrize("field,value", [("config", "sha256:/etc"), ("layer", "sha256:.."),
                                         ("layer", "sha512:" + "cd" * 64)])
def test_manifest_with_a_bad_digest(field, value):
    manifest = {"config": {"digest": GOOD}, "layers": [{"digest": GOOD}]}
    if field == "config":
        manifest["config"]["digest"] = value
    else:
        manifest["layers"].append({"digest": value})
    with pytest.raises(digest.BadDigest, match=f"ref: manifest: .*{field}"):
        manifests.check_manifest(manifest, "ref")


@pytest.mark.parametrize("manifest", [[], {"config": {}, "layers": []},
                                      {"config": {"digest": GOOD}, "layers": "x"},
                                      {"config": {"digest": GOOD}, "layers": ["x"]}])
def test_malformed_manifests(manifest):
    with pytest.raises(registry.RegistryError, match="malformed manifest"):
        manifests.check_manifest(manifest, "ref")


def test_select_platform_survives_junk():
    with pytest.raises(BockerError, match="no image for platform"):
        platforms.select_platform({"manifests": ["x", 1, {"platform": "y"}]},
                                 ("linux", "amd64", None))
    with pytest.raises(BockerError):
        platforms.select_platform([], ("linux", "amd64", None))


# ---------------------------------------------------------------- archives

def _tar(path, members):
    """members: (name, bytes) regular files, (name, ('sym'|'lnk'|'fifo', target))."""
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                kind, target = data
                info.type = {"sym": tarfile.SYMTYPE, "lnk": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE}[kind]
                info.linkname = target or ""
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return str(path)


def _docker_manifest(config="c.json", layers_=("l/layer.tar",), tags=()):
    return json.dumps([{"Config": config, "Layers": list(layers_),
                        "RepoTags": list(tags)}]).encode()


def _load(path):
    # No root needed: every refusal below comes before the store is touched
    # (a bocker root that does not exist would fail later, and differently).
    return archive.load(Paths("/nonexistent-bocker-root"), path)


@pytest.mark.parametrize("diff_id", ["sha256:/var/bocker", "sha256:../../../var",
                                     "sha256:zz", "sha512:" + "ab" * 64])
def test_docker_archive_with_hostile_diff_id(tmp_path, diff_id):
    path = _tar(tmp_path / "a.tar", [("manifest.json", _docker_manifest()),
                                     ("c.json", _config([diff_id])), ("l/layer.tar", b"")])
    with pytest.raises(digest.BadDigest, match="diff_id"):
        _load(path)


@pytest.mark.parametrize("name", ["../c.json", "a/../../c.json", "..", 5, None, ["c.json"]])
def test_docker_archive_with_hostile_config_path(tmp_path, name):
    path = _tar(tmp_path / "a.tar", [("manifest.json", _docker_manifest(config=name)),
                                     ("c.json", _config([GOOD]))])
    with pytest.raises(archive.ArchiveError, match="bad path"):
        _load(path)


@pytest.mark.parametrize("layer", ["../../etc/passwd", "/../x", "l/../../x"])
def test_docker_archive_with_hostile_layer_path(tmp_path, layer):
    path = _tar(tmp_path / "a.tar", [("manifest.json", _docker_manifest(layers_=[layer])),
                                     ("c.json", _config([GOOD]))])
    with pytest.raises(archive.ArchiveError, match="bad path"):
        _load(path)


def test_tar_member_escaping_is_refused(tmp_path):
    path = _tar(tmp_path / "a.tar", [("manifest.json", _docker_manifest()),
                                     ("../../evil", b"x")])
    with pytest.raises(archive.ArchiveError, match="bad path"):
        _load(path)


@pytest.mark.parametrize("target,message", [("../../../etc/passwd", "bad path"),
                                            ("layer.tar", "too many links"),
                                            ("/", "bad path"), ("", "lacks")])
def test_tar_symlink_members_stay_inside(tmp_path, target, message):
    path = _tar(tmp_path / "a.tar", [("manifest.json", _docker_manifest()),
                                     ("c.json", _config([GOOD])),
                                     ("l/layer.tar", ("sym", target))])
    with pytest.raises(archive.ArchiveError, match=message):
        _load(path)


def test_tar_fifo_member_is_not_a_file(tmp_path):
    path = _tar(tmp_path / "a.tar", [("manifest.json", _docker_manifest()),
                                     ("c.json", ("fifo", None))])
    with pytest.raises(archive.ArchiveError, match="not a regular file"):
        _load(path)


def test_tar_symlink_to_a_member_is_followed(tmp_path):
    # Docker 25's `docker save` links legacy <id>/layer.tar to blobs/sha256/<hex>.
    t = tarfile.open(_tar(tmp_path / "a.tar", [("blobs/sha256/x", b"data"),
                                               ("id/layer.tar", ("sym", "../blobs/sha256/x"))]))
    t.close()
    source = archive_source.TarSource(str(tmp_path / "a.tar"))
    try:
        assert source.open("id/layer.tar").read() == b"data"
    finally:
        source.close()


@pytest.mark.parametrize("entry", [
    {"digest": "sha256:../../../../etc/passwd"}, {"digest": "sha512:" + "ab" * 64},
    {"digest": 3}, {}, "x"])
def test_oci_index_with_hostile_digest(tmp_path, entry):
    os.mkdir(tmp_path / "oci")
    (tmp_path / "oci" / "index.json").write_text(json.dumps({"manifests": [entry]}))
    with pytest.raises((digest.BadDigest, archive.ArchiveError)) as info:
        _load(str(tmp_path / "oci"))
    assert "\n" not in str(info.value)


def test_oci_manifest_with_hostile_layer_digest(tmp_path):
    blobs = tmp_path / "oci" / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data):
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return "sha256:" + h
    config = blob(_config([GOOD]))
    manifest = blob(json.dumps({"config": {"digest": config},
                                "layers": [{"digest": "sha256:/var/bocker"}]}).encode())
    (tmp_path / "oci" / "index.json").write_text(json.dumps(
        {"manifests": [{"digest": manifest}]}))
    with pytest.raises(digest.BadDigest, match="layer digest 'sha256:/var/bocker'"):
        _load(str(tmp_path / "oci"))


def test_directory_archive_fifo_and_escape(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    os.mkfifo(d / "manifest.json")
    with pytest.raises(archive.ArchiveError, match="neither"):  # a FIFO is not a file
        _load(str(d))
    os.unlink(d / "manifest.json")
    (d / "manifest.json").write_bytes(_docker_manifest(config="cfg.json"))
    os.mkfifo(d / "cfg.json")
    with pytest.raises(archive.ArchiveError, match="a FIFO, not a regular file"):
        _load(str(d))
    os.unlink(d / "cfg.json")
    os.symlink("/etc/passwd", d / "cfg.json")
    with pytest.raises(archive.ArchiveError, match="bad path"):
        _load(str(d))


def test_show_is_printable():
    shown = digest.show("sha256:\x1b[31m\n" + "x" * 500)
    assert all(c in string.printable and c not in "\n\r\x1b" for c in shown)
    assert len(shown) <= 90
