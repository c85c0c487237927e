"""bocker save writes the layers an image has, in a real btrfs root.

A loaded (pulled-like) image of three layers is saved as three layers
whose diff IDs podman and skopeo read back from the archive; each layer
holds only its own changes (whiteouts for what it deleted); saving twice
gives the same bytes; loading the archive back gives the same rootfs.  A
built image (record["build"], as the builder writes it, made here by
hand from build-cache entries) is saved as its base's layers plus one per
step, and as fewer when an entry is gone, its history still paired.
"""
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from bocker import state
from bocker.image import archive, history, images
from bocker.kernel import store

from conftest_pull import (Layout, btrfs_fs, busybox_layer, pull_paths,  # noqa: F401
                           tar_layer)
from test_archive import CONFIG, tree

NAME = "bkp/layers:1"
LAYERS = [
    busybox_layer("saved"),
    tar_layer([("etc", "dir"), ("etc/two", "file", "2\n"), ("etc/marker", "file", "changed\n"),
               ("var", "dir"), ("var/cache", "dir"), ("var/cache/a", "file", "a"),
               ("var/cache/b", "file", "b")]),
    tar_layer([("etc", "dir"), ("etc/.wh.two", "file"), ("var", "dir"),
               ("var/.wh.cache", "file"), ("var/cache", "dir"), ("var/cache/c", "file", "c")]),
]


@pytest.fixture
def loaded(pull_paths, tmp_path):
    lay = Layout(str(tmp_path / "oci"))
    desc = lay.image(LAYERS, config=CONFIG)
    desc["annotations"] = {"io.containerd.image.name": NAME}
    lay.index["manifests"].append(desc)
    with open(os.path.join(lay.dir, "index.json"), "w") as f:
        json.dump(lay.index, f)
    [(image_id, _, _)] = archive.load(pull_paths, lay.dir)
    return image_id  # pull_paths removes every image at teardown


def archive_parts(path):
    """(manifest entry, config, {layer name: member names}) of a docker archive."""
    with tarfile.open(path) as tf:
        [entry] = json.load(tf.extractfile("manifest.json"))
        config = json.load(tf.extractfile(entry["Config"]))
        layers = {}
        for name in entry["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(tf.extractfile(name).read())) as lt:
                layers[name] = lt.getnames()
    return entry, config, layers


def made_layers(config):
    return [h for h in config["history"] if not h.get("empty_layer")]


def test_a_pulled_image_saved_layer_by_layer(pull_paths, loaded, tmp_path):
    out, again = tmp_path / "saved.tar", tmp_path / "again.tar"
    archive.save(pull_paths, loaded, str(out))
    entry, config, layers = archive_parts(out)
    diff_ids = config["rootfs"]["diff_ids"]
    assert len(entry["Layers"]) == len(diff_ids) == len(made_layers(config)) == 3
    assert [h["created_by"] for h in config["history"]] == [
        h["created_by"] for h in images.load(pull_paths, loaded)["history"]]
    second, third = (layers[n] for n in entry["Layers"][1:])
    # only each layer's changes: not busybox again
    assert "bin/busybox" not in second and "bin/busybox" not in third
    assert {"etc/two", "etc/marker", "var/cache/a"} <= set(second)
    assert "etc/.wh.two" in third and "var/cache/c" in third
    assert "var/cache/.wh..wh..opq" in third and "var/cache/a" not in third
    # the same image saved twice: the same bytes
    archive.save(pull_paths, loaded, str(again))
    assert out.read_bytes() == again.read_bytes()

    info = json.loads(subprocess.run(
        ["skopeo", "--insecure-policy", "inspect", "--raw", f"docker-archive:{out}"],
        check=True, capture_output=True, text=True).stdout)
    assert len(info["layers"]) == 3
    got = json.loads(subprocess.run(
        ["skopeo", "--insecure-policy", "inspect", "--config", f"docker-archive:{out}"],
        check=True, capture_output=True, text=True).stdout)
    assert got["rootfs"]["diff_ids"] == diff_ids

    # loaded back: the same files; its layers the same diff IDs again
    original = tree(images.rootfs(pull_paths, loaded))
    images.remove(pull_paths, loaded)
    [(back, _, _)] = archive.load(pull_paths, str(out))
    assert tree(images.rootfs(pull_paths, back)) == original
    # and saved again, its layers are the very same: a layer of ours is canonical
    archive.save(pull_paths, back, str(again))
    assert archive_parts(again)[1]["rootfs"]["diff_ids"] == diff_ids


@pytest.mark.skipif(not shutil.which("podman"), reason="podman not installed")
def test_podman_loads_every_layer(pull_paths, loaded, tmp_path):
    out = tmp_path / "saved.tar"
    archive.save(pull_paths, loaded, str(out))
    _, config, _ = archive_parts(out)
    store_dir = tempfile.mkdtemp(prefix="bkp-pm-")  # runroot: < 50 chars
    podman = ["podman", "--root", f"{store_dir}/root", "--runroot", f"{store_dir}/run",
              "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
              "none"]
    try:
        done = subprocess.run(podman + ["load", "-i", str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        [inspected] = json.loads(subprocess.run(
            podman + ["image", "inspect", NAME],
            check=True, capture_output=True, text=True).stdout)
        assert inspected["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
        assert len(inspected["RootFS"]["Layers"]) == 3
    finally:
        subprocess.run(podman + ["system", "reset", "--force"], capture_output=True)
        shutil.rmtree(store_dir, ignore_errors=True)


# ---------------------------------------------------------------- built images

def _entry(paths, key, parent_rootfs, change, instruction, size):
    """A build-cache entry: a read-only snapshot of parent_rootfs changed by change(rootfs)."""
    directory = os.path.join(paths.buildcache, key)
    os.makedirs(directory)
    rootfs = os.path.join(directory, "rootfs")
    store.snapshot(parent_rootfs, rootfs)
    change(rootfs)
    store.set_readonly(rootfs)
    state.write_json(os.path.join(directory, "step.json"),
                     {"key": key, "instruction": instruction, "size": size})
    return rootfs


def _write(path, data):
    with open(path, "w") as f:
        f.write(data)


@pytest.fixture
def built(pull_paths, loaded):
    base = images.load(pull_paths, loaded)
    keys = k1, k2, k3 = ("1" * 64, "2" * 64, "3" * 64)
    r1 = _entry(pull_paths, k1, images.rootfs(pull_paths, loaded),
                lambda r: _write(f"{r}/step1", "one"), "COPY step1 /", 3)
    r2 = _entry(pull_paths, k2, r1, lambda r: os.unlink(f"{r}/etc/marker"), "RUN rm /etc/marker", 0)
    _entry(pull_paths, k3, r2, lambda r: os.mkdir(f"{r}/made"), "WORKDIR /made", 4096)
    steps = [{"created_by": "COPY step1 /"}, {"created_by": "ENV A=1", "empty_layer": True},
             {"created_by": "RUN rm /etc/marker"}, {"created_by": "WORKDIR /made"}]
    image_id = images.create(
        pull_paths, "build", None, snapshot_of=os.path.join(pull_paths.buildcache, k3,
                                                            "rootfs"),
        config=CONFIG, extra={"history": base["history"] + steps,
                              "build": {"key": k3, "base": {"layers": base["layers"]},
                                        "layers": [k1, k2, k3]}})
    yield image_id, keys
    images.remove(pull_paths, image_id)
    for key in keys:
        store.remove_dir(os.path.join(pull_paths.buildcache, key), "step.json")
    os.rmdir(pull_paths.buildcache)


def test_a_built_image_saved_one_layer_per_step(pull_paths, built, tmp_path):
    image_id, keys = built
    out = tmp_path / "built.tar"
    archive.save(pull_paths, image_id, str(out))
    entry, config, layers = archive_parts(out)
    assert len(config["rootfs"]["diff_ids"]) == len(made_layers(config)) == 6
    assert [layers[n] for n in entry["Layers"][3:]] == [["step1"], ["etc", "etc/.wh.marker"],
                                                       ["made"]]
    rows = history.rows(images.load(pull_paths, image_id),
                        history.layer_sizes(pull_paths, images.load(pull_paths, image_id)))
    assert [(r["CreatedBy"], r["Size"]) for r in rows[:4]] == [
        ("WORKDIR /made", 4096), ("RUN rm /etc/marker", 0), ("ENV A=1", 0), ("COPY step1 /", 3)]

    # the RUN's entry pruned: its change goes with the next layer, the history still pairs
    store.delete(os.path.join(pull_paths.buildcache, keys[1], "rootfs"))
    archive.save(pull_paths, image_id, str(out))
    entry, config, layers = archive_parts(out)
    assert len(config["rootfs"]["diff_ids"]) == len(made_layers(config)) == 5
    assert [layers[n] for n in entry["Layers"][3:]] == [["step1"],
                                                       ["etc", "etc/.wh.marker", "made"]]
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"docker-archive:{out}",
                    f"oci:{tmp_path / 'oci-out'}:x"], check=True)
    [(back, _, _)] = archive.load(pull_paths, str(out))
    assert tree(images.rootfs(pull_paths, back)) == tree(images.rootfs(pull_paths, image_id))


def test_an_image_of_neither_is_one_layer(pull_paths, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("x")
    image_id = images.init(pull_paths, str(src))
    out = tmp_path / "one.tar"
    archive.save(pull_paths, image_id, str(out))
    entry, config, layers = archive_parts(out)
    assert len(entry["Layers"]) == len(made_layers(config)) == 1
    assert layers[entry["Layers"][0]] == ["d", "d/f"]
