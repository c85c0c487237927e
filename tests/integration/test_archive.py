"""bocker load / save: OCI layouts and docker archives, round trips via skopeo."""
import gzip
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from bocker.image import archive, images, layer_store, registry

from conftest_pull import (Layout, btrfs_fs, busybox_layer, pull_paths, subvolumes,  # noqa: F401
                           tar_layer)

CONFIG = {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/etc"}


def tree(top):
    """Names, types, modes, link targets and contents below top."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            item = [st.st_mode, st.st_uid, st.st_gid]
            if os.path.islink(path):
                item.append(os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    item.append(f.read())
            out[os.path.relpath(path, top)] = item
    return out


@pytest.fixture
def layout(tmp_path):
    lay = Layout(str(tmp_path / "oci"))
    desc = lay.image([busybox_layer("loaded"), tar_layer([("etc/two", "file", "2\n")])],
                     config=CONFIG)
    desc["annotations"] = {"io.containerd.image.name": "bkp/loaded:1",
                           "org.opencontainers.image.ref.name": "1"}
    lay.index["manifests"].append(desc)
    with open(os.path.join(lay.dir, "index.json"), "w") as f:
        json.dump(lay.index, f)
    return lay


def test_load_oci_dir_tar_and_gzip(pull_paths, layout, tmp_path):
    [(image_id, name, up)] = archive.load(pull_paths, layout.dir)
    assert (name, up) == ("bkp/loaded:1", False)
    record = images.load(pull_paths, image_id)
    assert record["names"] == ["bkp/loaded:1"] and record["config"] == CONFIG
    fs = images.rootfs(pull_paths, image_id)
    assert open(f"{fs}/etc/two").read() == "2\n" and os.path.islink(f"{fs}/bin/sh")
    # The same layout as a tar and as a tar.gz: already there.
    tar = tmp_path / "oci.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(layout.dir, arcname=".")
    assert archive.load(pull_paths, str(tar)) == [(image_id, "bkp/loaded:1", True)]
    with open(tar, "rb") as f, gzip.open(tmp_path / "oci.tar.gz", "wb") as g:
        shutil.copyfileobj(f, g)
    assert archive.load(pull_paths, str(tmp_path / "oci.tar.gz"))[0][2]


def test_load_docker_archive_from_skopeo(pull_paths, layout, tmp_path):
    out = tmp_path / "docker.tar"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"oci:{layout.dir}:1",
                    f"docker-archive:{out}:bkp/fromskopeo:v9"], check=True)
    [(image_id, name, _)] = archive.load(pull_paths, str(out))
    assert name == "bkp/fromskopeo:v9"
    assert open(f"{images.rootfs(pull_paths, image_id)}/etc/marker").read() == "loaded\n"
    assert images.load(pull_paths, image_id)["config"]["Cmd"] == ["/bin/sh"]


def test_save_roundtrip_accepted_by_skopeo(pull_paths, layout, tmp_path):
    [(image_id, _, _)] = archive.load(pull_paths, layout.dir)
    out = tmp_path / "saved.tar"
    archive.save(pull_paths, "bkp/loaded:1", str(out))
    # Another tool reads it: skopeo inspects and converts it.
    info = json.loads(subprocess.run(
        ["skopeo", "--insecure-policy", "inspect", f"docker-archive:{out}"],
        check=True, capture_output=True, text=True).stdout)
    assert info["Env"] == CONFIG["Env"]
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"docker-archive:{out}",
                    f"oci:{tmp_path / 'back'}:x"], check=True)
    # And we load it back: same files, same config, the name moves to it.
    os.setxattr(f"{images.rootfs(pull_paths, image_id)}/bin/busybox", "user.bkp", b"\xffcap")
    archive.save(pull_paths, "bkp/loaded:1", str(out))
    original = tree(images.rootfs(pull_paths, image_id))
    [(again, name, up)] = archive.load(pull_paths, str(out))
    assert not up and again != image_id and name == "bkp/loaded:1"
    assert tree(images.rootfs(pull_paths, again)) == original
    assert images.load(pull_paths, again)["config"] == CONFIG
    assert os.getxattr(f"{images.rootfs(pull_paths, again)}/bin/busybox", "user.bkp") == b"\xffcap"
    assert images.load(pull_paths, image_id)["names"] == []
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".bocker-save")]


def test_corrupt_layout_blob_stores_nothing(pull_paths, layout):
    manifest = json.load(open(os.path.join(layout.dir, "blobs", "sha256",
                                           layout.index["manifests"][0]["digest"][7:])))
    blob = os.path.join(layout.dir, "blobs", "sha256", manifest["layers"][1]["digest"][7:])
    with open(blob, "ab") as f:
        f.write(b"junk")
    with pytest.raises(registry.DigestMismatch):
        archive.load(pull_paths, layout.dir)
    assert layer_store.list_all(pull_paths) == [] and images.list_all(pull_paths) == []
    assert subvolumes(pull_paths) == []


def test_hostile_archive_paths(pull_paths, tmp_path):
    d = tmp_path / "evil"
    d.mkdir()
    (tmp_path / "secret.json").write_text("{}")
    (d / "manifest.json").write_text(json.dumps(
        [{"Config": "../secret.json", "RepoTags": [], "Layers": []}]))
    with pytest.raises(archive.ArchiveError, match="bad path"):
        archive.load(pull_paths, str(d))
    os.symlink("../secret.json", d / "cfg.json")
    (d / "manifest.json").write_text(json.dumps(
        [{"Config": "cfg.json", "RepoTags": [], "Layers": []}]))
    with pytest.raises(archive.ArchiveError, match="bad path"):
        archive.load(pull_paths, str(d))


def test_not_an_archive(pull_paths, tmp_path):
    (tmp_path / "x").write_text("hello")
    with pytest.raises(archive.ArchiveError):
        archive.load(pull_paths, str(tmp_path / "x"))
    with pytest.raises(archive.NotFound):
        archive.load(pull_paths, str(tmp_path / "missing"))


@pytest.mark.skipif(not shutil.which("podman"), reason="podman not installed")
def test_save_accepted_by_podman_load(pull_paths, layout, tmp_path):
    archive.load(pull_paths, layout.dir)
    out = tmp_path / "saved.tar"
    archive.save(pull_paths, "bkp/loaded:1", str(out))
    import pathlib
    import tempfile
    store_dir = pathlib.Path(tempfile.mkdtemp(prefix="bkp-pm-"))  # runroot: < 50 chars
    podman = ["podman", "--root", str(store_dir / "root"), "--runroot", str(store_dir / "run"),
              "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
              "none"]
    try:
        loaded = subprocess.run(podman + ["load", "-i", str(out)],
                                capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        assert "bkp/loaded:1" in loaded.stdout
        listed = subprocess.run(podman + ["image", "inspect", "bkp/loaded:1"], check=True,
                                capture_output=True, text=True)
        assert json.loads(listed.stdout)[0]["Config"]["Env"] == CONFIG["Env"]
    finally:
        subprocess.run(podman + ["system", "reset", "--force"], capture_output=True)
        shutil.rmtree(store_dir, ignore_errors=True)
