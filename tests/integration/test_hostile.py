"""Hostile images and containers, through the CLI: a `bocker load` archive
whose digests would name host paths, container files that are FIFOs,
symlinks out of the rootfs or huge, and output without newlines."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from bocker.image import images
from bocker.runtime import attach, records

from conftest import BOCKER, own_subvolumes
from conftest_pull import busybox_layer

CAP = attach.LINE_MAX_BYTES
APPLETS = ["sh", "id", "true", "sleep", "cat", "head", "tr", "printf", "echo"]


def _sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _docker_archive(path, diff_ids, layers=("l/layer.tar",), extra=()):
    """A docker-archive tar: one image, these diff IDs and layer files."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}).encode()
    with tarfile.open(path, "w") as tf:
        _add(tf, "manifest.json", json.dumps([{"Config": "c.json", "Layers": list(layers),
                                               "RepoTags": ["bkh/evil:1"]}]).encode())
        _add(tf, "c.json", config)
        for name in layers:
            if ".." not in name:
                _add(tf, name, busybox_layer("evil"))
        for name, data in extra:
            _add(tf, name, data)
    return str(path)


def _state(paths):
    return ({r["id"] for r in images.list_all(paths)}, own_subvolumes(paths),
            sorted(os.listdir(paths.layers)) if os.path.isdir(paths.layers) else [])


def _refused(bocker, paths, archive, message):
    before = _state(paths)
    proc = bocker("load", "-i", archive)
    assert proc.returncode != 0
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _state(paths) == before  # no image, no subvolume, no layer


@pytest.fixture
def stored_layer(bocker, paths, tmp_path):
    """A genuine image loaded first: its layer directory is what a hostile
    diff ID would try to name."""
    layer = busybox_layer("evil")
    bocker("load", "-i", _docker_archive(tmp_path / "good.tar", [_sha(layer)]), check=True)
    image_id = images.resolve(paths, "bkh/evil:1")
    directory = os.path.join(paths.layers, _sha(layer)[7:])
    assert os.path.exists(os.path.join(directory, "layer.json"))
    yield directory
    bocker("rmi", image_id, check=True)


@pytest.mark.parametrize("kind", ["root", "layer dir", "var", "dotdot"])
def test_load_diff_id_naming_a_host_path(bocker, paths, tmp_path, stored_layer, kind):
    target = {"root": paths.root, "layer dir": stored_layer, "var": "/var/bocker",
              "dotdot": "../../../../var/bocker"}[kind]
    archive = _docker_archive(tmp_path / "evil.tar", ["sha256:" + target])
    _refused(bocker, paths, archive, "invalid diff_id 'sha256:")


def test_load_non_hex_and_other_algorithms(bocker, paths, tmp_path):
    _refused(bocker, paths, _docker_archive(tmp_path / "a.tar", ["sha256:" + "zz" * 32]),
             "expected sha256:<64 lowercase hex>")
    _refused(bocker, paths, _docker_archive(tmp_path / "b.tar", ["sha256:" + "AB" * 32]),
             "expected sha256:<64 lowercase hex>")
    _refused(bocker, paths, _docker_archive(tmp_path / "c.tar", ["sha512:" + "ab" * 64]),
             "unsupported diff_id algorithm 'sha512'")


def test_load_dotdot_blob_paths(bocker, paths, tmp_path):
    layer = busybox_layer("evil")
    _refused(bocker, paths, _docker_archive(tmp_path / "a.tar", [_sha(layer)],
                                            layers=["../../../etc/passwd"]), "bad path")
    _refused(bocker, paths, _docker_archive(tmp_path / "b.tar", [_sha(layer)],
                                            extra=[("../outside", b"x")]), "bad path")


def test_load_oci_layout_with_hostile_digests(bocker, paths, tmp_path):
    layout = tmp_path / "oci"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for bad, message in [("sha256:../../../../etc/passwd", "invalid digest"),
                         ("sha512:" + "ab" * 64, "unsupported digest algorithm 'sha512'"),
                         ("sha256:" + "g" * 64, "invalid digest")]:
        (layout / "index.json").write_text(json.dumps({"manifests": [{"digest": bad}]}))
        _refused(bocker, paths, str(layout), message)
    # A manifest (genuine, verified) whose layer digest names a directory.
    config = json.dumps({"rootfs": {"diff_ids": [_sha(b"")]}}).encode()
    manifest = json.dumps({"config": {"digest": _sha(config)},
                           "layers": [{"digest": f"sha256:{paths.root}"}]}).encode()
    for blob in (config, manifest):
        (layout / "blobs" / "sha256" / _sha(blob)[7:]).write_bytes(blob)
    (layout / "index.json").write_text(json.dumps({"manifests": [{"digest": _sha(manifest)}]}))
    _refused(bocker, paths, str(layout), f"invalid layer digest 'sha256:{paths.root}'")


def test_load_second_image_hostile_installs_neither(bocker, paths, tmp_path):
    layer = busybox_layer("first")
    good = json.dumps({"rootfs": {"diff_ids": [_sha(layer)]}}).encode()
    bad = json.dumps({"rootfs": {"diff_ids": ["sha256:/var/bocker"]}}).encode()
    path = tmp_path / "two.tar"
    with tarfile.open(path, "w") as tf:
        _add(tf, "manifest.json", json.dumps([
            {"Config": "good.json", "Layers": ["l.tar"], "RepoTags": ["bkh/good:1"]},
            {"Config": "bad.json", "Layers": ["l.tar"], "RepoTags": ["bkh/bad:1"]}]).encode())
        _add(tf, "good.json", good)
        _add(tf, "bad.json", bad)
        _add(tf, "l.tar", layer)
    _refused(bocker, paths, str(path), "invalid diff_id")


# ---------------------------------------------------------------- container files

def _tree(tmp_path, name="tree"):
    tree = tmp_path / name
    (tree / "bin").mkdir(parents=True)
    shutil.copy(os.path.realpath("/bin/busybox"), tree / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", tree / "bin" / applet)
    (tree / "tmp").mkdir()
    return tree


@pytest.fixture
def make_image(bocker, tmp_path):
    made = []

    def make(tree):
        image_id = bocker("init", str(tree), check=True).stdout.split()[1]
        made.append(image_id)
        return image_id
    yield make
    for image_id in made:
        bocker("rmi", image_id, check=True)


def test_passwd_fifo_fails_fast(bocker, make_image, tmp_path):
    tree = _tree(tmp_path)
    (tree / "etc").mkdir()
    os.mkfifo(tree / "etc" / "passwd")
    image = make_image(tree)
    proc = bocker("run", "--rm", "-u", "nobody", image, "true", timeout=30)
    assert proc.returncode == 125  # the run never started
    assert proc.stderr == ("bocker: cannot read the container's /etc/passwd: "
                           "a FIFO, not a regular file\n")
    bocker("run", "-d", "--name", "fifo-box", image, "sleep", "60", check=True)
    try:
        proc = bocker("exec", "-u", "nobody", "fifo-box", "true", timeout=30)
        assert proc.returncode == 1 and "a FIFO, not a regular file" in proc.stderr
        # A numeric user needs no lookup... but the file is still refused, not hung on.
        assert bocker("exec", "fifo-box", "true", timeout=30).returncode == 0
    finally:
        bocker("rm", "-f", "fifo-box", check=True)


def test_passwd_symlink_to_a_host_path_resolves_inside(bocker, make_image, tmp_path):
    host = tmp_path / "host-passwd"
    host.write_text("nobody:x:4242:4242:host:/host:/bin/sh\n")
    tree = _tree(tmp_path)
    (tree / "etc").mkdir()
    os.symlink(str(host), tree / "etc" / "passwd")
    image = make_image(tree)
    proc = bocker("run", "--rm", "-u", "nobody", image, "id", "-u", timeout=30)
    assert proc.returncode == 125 and "unable to find user nobody" in proc.stderr
    # The same absolute path inside the rootfs is what the link means there.
    tree2 = _tree(tmp_path, "tree2")
    (tree2 / "etc").mkdir()
    os.symlink(str(host), tree2 / "etc" / "passwd")
    inside = tree2 / str(host).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("nobody:x:777:778:inside:/:/bin/sh\n")
    image2 = make_image(tree2)
    proc = bocker("run", "--rm", "-u", "nobody", image2, "sh", "-c", "id -u; id -g", timeout=30)
    assert proc.stdout == "777\n778\n", proc.stderr


def test_etc_symlink_escaping_resolves_inside(bocker, make_image, tmp_path):
    hostetc = tmp_path / "hostetc"
    hostetc.mkdir()
    (hostetc / "passwd").write_text("nobody:x:4242:4242:host:/host:/bin/sh\n")
    tree = _tree(tmp_path)
    os.symlink("../" * 20 + str(hostetc).lstrip("/"), tree / "etc")
    inside = tree / str(hostetc).lstrip("/")
    inside.mkdir(parents=True)
    (inside / "passwd").write_text("nobody:x:779:779:inside:/:/bin/sh\n")
    image = make_image(tree)
    from bocker.runtime import spec
    rootfs = images.rootfs(__import__("bocker.state").state.Paths(), image)
    assert spec.resolve_user(rootfs, "nobody") == (779, 779, "/")
    proc = bocker("run", "--rm", "-u", "nobody", image, "id", "-u", timeout=30)
    assert "4242" not in proc.stdout
    assert proc.returncode != 0 or proc.stdout == "779\n", proc.stderr


def test_huge_passwd_is_refused(bocker, make_image, tmp_path):
    tree = _tree(tmp_path)
    (tree / "etc").mkdir()
    with open(tree / "etc" / "passwd", "wb") as f:
        f.write(b"root:x:0:0::/root:/bin/sh\n")
        f.truncate(100 << 20)  # sparse: 100 MB for the reader, little on disk
    image = make_image(tree)
    proc = bocker("run", "--rm", "-u", "root", image, "true", timeout=30)
    assert proc.returncode == 125
    assert "cannot read the container's /etc/passwd: larger than" in proc.stderr


# ---------------------------------------------------------------- output

LONG = ("head -c 40000 /dev/zero | tr '\\0' a; echo; head -c 16383 /dev/zero | tr '\\0' b;"
        " echo; head -c 16384 /dev/zero | tr '\\0' c; echo; echo short;"
        " head -c 20000 /dev/zero | tr '\\0' d")


def _texts(log):
    with open(log, "rb") as f:
        return [(parts[1], parts[2][:-1]) for parts in (line.split(b" ", 2) for line in f)]


def test_attached_and_detached_logs_agree(bocker, paths):
    bocker("run", "--name", "long-att", "busybox", "sh", "-c", LONG, check=True)
    cid = bocker("run", "-d", "--name", "long-det", "busybox", "sh", "-c", LONG,
                 check=True).stdout.strip()
    try:
        bocker("wait", cid, check=True)
        attached = _texts(records.log_path(paths, records.resolve(paths, "long-att")))
        detached = _texts(records.log_path(paths, records.resolve(paths, "long-det")))
        assert attached == detached
        assert [len(t) for _, t in attached] == [CAP, CAP, 40000 - 2 * CAP, 16383, CAP, 0,
                                                 5, CAP, 20000 - CAP]
        # bocker logs gives back the bytes the container wrote.
        out = bocker("logs", "long-det", check=True).stdout
        assert out == "a" * 40000 + "\n" + "b" * 16383 + "\n" + "c" * 16384 + "\nshort\n" \
            + "d" * 20000 + "\n"
    finally:
        bocker("rm", "long-att", "long-det", check=True)


# Run by a small fresh Python, not by pytest: a child's max RSS counts the
# memory of the process it was forked from until its execve, and pytest's
# own (100 MB after a few hundred tests) would drown the measurement.
MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def test_attached_100mb_without_newline_stays_small(bocker, paths):
    """Max RSS of the bocker process (from wait4) while a container prints
    100 MB with no newline: about 40 MB; before the cap it grew past 200 MB."""
    try:
        out = subprocess.run([sys.executable, "-c", MEASURE, BOCKER, "run", "--name", "flood",
                              "busybox", "sh", "-c", "head -c 100000000 /dev/zero | tr '\\0' x"],
                             capture_output=True, text=True, timeout=300)
        code, maxrss = map(int, out.stdout.split())
        assert code == 0, out.stderr
        print(f"max RSS of the attached bocker: {maxrss} KiB")
        assert maxrss < 64 * 1024, f"max RSS {maxrss} KiB"
        log = records.log_path(paths, records.resolve(paths, "flood"))
        count, total = 0, 0
        with open(log, "rb") as f:
            for line in f:
                text = line.split(b" ", 2)[2]
                assert len(text) <= CAP + 1
                count += 1
                total += len(text) - 1
        assert total == 100_000_000 and count == -(-100_000_000 // CAP)
    finally:
        bocker("rm", "-f", "flood", check=True)


# ---------------------------------------------------------------- registry

def _registry_script(manifest, blobs):
    def script(h, path, _n):
        if path == "/v2/":
            return h.reply(200, b"{}")
        if path.startswith("/v2/evil/manifests/"):
            body = json.dumps(manifest).encode()
            media = manifest.get("mediaType", "application/vnd.oci.image.manifest.v1+json")
            return h.reply(200, body, [("Content-Type", media)])
        for digest_, data in blobs.items():
            if path == f"/v2/evil/blobs/{digest_}":
                return h.reply(200, data)
        return h.reply(404)
    return script


def _pull_refused(bocker, paths, server, message):
    before = _state(paths)
    proc = bocker("pull", f"{server.host}/evil:t")
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert _state(paths) == before


@pytest.fixture
def registry_server():
    from test_registry_transport import Server
    servers = []

    def start(manifest, blobs=None):
        servers.append(Server(_registry_script(manifest, blobs or {})))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def test_pull_hostile_layer_digest_asks_for_nothing(bocker, paths, registry_server):
    config = json.dumps({"rootfs": {"diff_ids": [_sha(b"")]}}).encode()
    server = registry_server({"schemaVersion": 2, "config": {"digest": _sha(config)},
                              "layers": [{"digest": "sha256:../../../../etc/shadow"}]},
                             {_sha(config): config})
    _pull_refused(bocker, paths, server, "invalid layer digest 'sha256:../../../../etc/shadow'")
    assert not [p for p, _ in server.log if "/blobs/" in p]  # refused before any URL


def test_pull_hostile_diff_id(bocker, paths, registry_server):
    config = json.dumps({"rootfs": {"diff_ids": [f"sha256:{paths.layers}"]}}).encode()
    layer = busybox_layer("x")
    server = registry_server({"schemaVersion": 2, "config": {"digest": _sha(config)},
                              "layers": [{"digest": _sha(layer)}]},
                             {_sha(config): config, _sha(layer): layer})
    _pull_refused(bocker, paths, server, "invalid diff_id")
    assert [p for p, _ in server.log if "/blobs/" in p] == [f"/v2/evil/blobs/{_sha(config)}"]


def test_pull_hostile_index_entry(bocker, paths, registry_server):
    from bocker.image import platforms
    host = platforms.host_platform()
    server = registry_server({"schemaVersion": 2,
                              "mediaType": "application/vnd.oci.image.index.v1+json",
                              "manifests": [{"digest": "sha256:/etc/x", "platform": {
                                  "os": host[0], "architecture": host[1]}}]})
    _pull_refused(bocker, paths, server, "invalid manifest digest 'sha256:/etc/x'")
    assert [p for p, _ in server.log if "/manifests/" in p] == ["/v2/evil/manifests/t"]


def test_pull_other_algorithm(bocker):
    proc = bocker("pull", "busybox@sha512:" + "ab" * 64)
    assert proc.returncode == 1 and "only sha256 is supported" in proc.stderr
