"""bocker pull against real registries on 127.0.0.1 (see conftest_pull.py)."""
import errno
import json
import os
import shutil
import stat
import tempfile

import pytest

from bocker.errors import BockerError, NoSuchImage
from bocker.image import credentials, images, layer_store, platforms, pull, registry

from conftest_pull import (Layout, btrfs_fs, busybox_layer, pull_paths, push,  # noqa: F401
                           registries, subvolumes, tar_layer)

CONFIG = {"Env": ["PATH=/bin", "GREETING=hello"], "Cmd": ["/bin/sh", "-c", "echo hi"],
          "Entrypoint": ["/bin/env"], "WorkingDir": "/root", "User": "0:0",
          "ExposedPorts": {"80/tcp": {}}, "Labels": {"org.bkp": "yes"}}

OVERLAY = tar_layer([
    ("etc/.wh.marker", "file", b""),          # delete a file
    ("bin/.wh.cat", "file", b""),             # delete a symlink
    (".wh.root", "file", b""),                # delete a directory
    ("opaque", "dir"), ("opaque/.wh..wh..opq", "file", b""), ("opaque/new", "file", "new\n"),
    ("etc/added", "file", "added\n"),
])
LOWER_EXTRA = tar_layer([("opaque", "dir"), ("opaque/old", "file", "old\n"),
                         ("opaque/olddir", "dir"), ("opaque/olddir/x", "file", "x\n")])


class Recorder(pull.Progress):
    def __init__(self):
        self.events = []

    def layer(self, digest, size, status):
        self.events.append((digest, status))


@pytest.fixture(scope="session")
def pushed(registries):
    """Build the test images once and push them to the shared storage."""
    work = tempfile.mkdtemp(prefix="bkp-layouts-")
    lay = Layout(os.path.join(work, "oci"))
    base = busybox_layer("base")
    lay.tag(lay.image([base], config=CONFIG), "single")
    lay.tag(lay.image([base, LOWER_EXTRA, OVERLAY]), "whiteouts")
    lay.tag(lay.image([busybox_layer("zstd")], compression="zstd"), "zstd")
    lay.tag(lay.image([busybox_layer("plain"), tar_layer([("etc/p", "file", "p\n")])],
                      compression=["gzip", "none"]), "mixed")
    lay.tag(lay.image([busybox_layer("v2s2")], config=CONFIG), "v2s2")
    lay.tag(lay.image([busybox_layer("corrupt")]), "corrupt")
    lay.tag(lay.image([busybox_layer("auth")]), "auth")
    lay.tag(lay.image([], config={"Cmd": ["/nothing"]}), "empty")
    amd = lay.image([busybox_layer("amd64")], arch="amd64")
    arm = lay.image([busybox_layer("arm64")], arch="arm64", variant="v8")
    att = lay.image([tar_layer([("attestation", "file", "{}")])], arch="amd64")
    att["annotations"] = {"vnd.docker.reference.type": "attestation-manifest"}
    lay.tag(lay.multi([att, arm, amd]), "multi")
    host = registries.plain
    for tag in ("single", "whiteouts", "zstd", "mixed", "corrupt", "auth", "empty"):
        push(lay.dir, tag, f"{host}/bkp/{tag}:v1")
    push(lay.dir, "v2s2", f"{host}/bkp/v2s2:v1", fmt="v2s2")
    push(lay.dir, "multi", f"{host}/bkp/multi:v1", all_=True)
    push(lay.dir, "single", f"{host}/bkp/single:other")
    yield {"layout": lay.dir, "host": host, "layout_obj": lay}
    shutil.rmtree(work)


def rootfs(p, image_id):
    return images.rootfs(p, image_id)


# ---------------------------------------------------------------- formats

def test_single_layer_oci(pull_paths, pushed):
    ref = f"{pushed['host']}/bkp/single:v1"
    result = pull.pull(pull_paths, ref)
    assert not result.up_to_date
    record = images.load(pull_paths, result.image_id)
    assert record["names"] == [ref]
    assert record["config"]["Env"] == CONFIG["Env"]
    for key in ("Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Labels"):
        assert record["config"][key] == CONFIG[key]
    fs = rootfs(pull_paths, result.image_id)
    with open("/bin/busybox", "rb") as f, open(f"{fs}/bin/busybox", "rb") as g:
        assert f.read() == g.read()
    assert os.readlink(f"{fs}/bin/sh") == "busybox"
    assert stat.S_IMODE(os.stat(f"{fs}/tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(f"{fs}/bin/busybox").st_mode) == 0o755
    assert os.stat(f"{fs}/bin/busybox").st_mtime == 1_700_000_000
    assert len(record["layers"]) == 1 and layer_store.exists(pull_paths, record["layers"][0])


def test_second_pull_is_up_to_date_and_layers_shared(pull_paths, pushed):
    ref = f"{pushed['host']}/bkp/single:v1"
    first = pull.pull(pull_paths, ref)
    again = pull.pull(pull_paths, ref)
    assert again.up_to_date and again.image_id == first.image_id
    # Another tag of the same image: a new name, but nothing is downloaded.
    rec = Recorder()
    other = pull.pull(pull_paths, f"{pushed['host']}/bkp/single", "other", progress=rec)
    assert not other.up_to_date and other.image_id != first.image_id
    assert [s for _, s in rec.events] == ["Already exists"]
    assert len(layer_store.list_all(pull_paths)) == 1
    # rmi of one image keeps the shared layer, rmi of the last drops it.
    images.remove(pull_paths, first.image_id)
    assert len(layer_store.list_all(pull_paths)) == 1
    images.remove(pull_paths, other.image_id)
    assert layer_store.list_all(pull_paths) == []
    assert subvolumes(pull_paths) == []


def test_docker_schema2(pull_paths, pushed):
    result = pull.pull(pull_paths, f"{pushed['host']}/bkp/v2s2:v1")
    record = images.load(pull_paths, result.image_id)
    assert record["config"]["Cmd"] == CONFIG["Cmd"]
    with open(f"{rootfs(pull_paths, result.image_id)}/etc/marker") as f:
        assert f.read() == "v2s2\n"
    manifest = registry.Client(pushed["host"]).manifest("bkp/v2s2", "v1")
    assert manifest[0] == registry.DOCKER_MANIFEST


def test_whiteouts_and_opaque(pull_paths, pushed):
    result = pull.pull(pull_paths, f"{pushed['host']}/bkp/whiteouts:v1")
    fs = rootfs(pull_paths, result.image_id)
    assert not os.path.lexists(f"{fs}/etc/marker")
    assert not os.path.lexists(f"{fs}/bin/cat")
    assert not os.path.lexists(f"{fs}/root")
    assert os.path.lexists(f"{fs}/bin/ls")
    assert sorted(os.listdir(f"{fs}/opaque")) == ["new"]
    assert open(f"{fs}/etc/added").read() == "added\n"
    # Each layer is a snapshot of the one below; the lower ones are intact.
    chain = images.load(pull_paths, result.image_id)["layers"]
    assert len(chain) == 3
    assert os.path.exists(f"{layer_store.rootfs(pull_paths, chain[0])}/etc/marker")
    assert sorted(os.listdir(f"{layer_store.rootfs(pull_paths, chain[1])}/opaque")) == ["old", "olddir"]
    # Layers are read-only subvolumes; the image's snapshot is writable.
    with pytest.raises(OSError) as e:
        open(f"{layer_store.rootfs(pull_paths, chain[0])}/etc/new", "w")
    assert e.value.errno == errno.EROFS
    open(f"{fs}/etc/new", "w").close()


def test_zstd_and_uncompressed_layers(pull_paths, pushed):
    z = pull.pull(pull_paths, f"{pushed['host']}/bkp/zstd:v1")
    assert open(f"{rootfs(pull_paths, z.image_id)}/etc/marker").read() == "zstd\n"
    m = pull.pull(pull_paths, f"{pushed['host']}/bkp/mixed:v1")
    assert open(f"{rootfs(pull_paths, m.image_id)}/etc/p").read() == "p\n"


def test_multi_arch_index(pull_paths, pushed):
    host = pushed["host"]
    native = pull.pull(pull_paths, f"{host}/bkp/multi:v1")
    want = platforms.host_platform()[1]
    fs = rootfs(pull_paths, native.image_id)
    assert not os.path.exists(f"{fs}/attestation")
    if want in ("amd64", "arm64"):
        assert open(f"{fs}/etc/marker").read() == f"{want}\n"
    arm = pull.pull(pull_paths, f"{host}/bkp/multi:v1", platform="linux/arm64")
    assert open(f"{rootfs(pull_paths, arm.image_id)}/etc/marker").read() == "arm64\n"
    assert images.load(pull_paths, arm.image_id)["architecture"] == "arm64"
    with pytest.raises(BockerError, match="no image for platform linux/s390x"):
        pull.pull(pull_paths, f"{host}/bkp/multi:v1", platform="linux/s390x")


def test_pull_by_digest(pull_paths, pushed):
    host = pushed["host"]
    _, _, digest = registry.Client(host).manifest("bkp/single", "v1")
    result = pull.pull(pull_paths, f"{host}/bkp/single@{digest}")
    record = images.load(pull_paths, result.image_id)
    assert record["names"] == [] and record["digest"] == digest


# ---------------------------------------------------------------- failures

def test_missing_tag(pull_paths, pushed):
    ref = f"{pushed['host']}/bkp/single:nope"
    with pytest.raises(NoSuchImage, match=f"No image named '{ref}' exists"):
        pull.pull(pull_paths, ref)
    with pytest.raises(NoSuchImage):
        pull.pull(pull_paths, f"{pushed['host']}/bkp/never-pushed:v1")
    assert subvolumes(pull_paths) == []


def test_corrupt_blob_stores_nothing(pull_paths, pushed, registries):
    client = registry.Client(pushed["host"])
    manifest, _, _ = client.resolve("bkp/corrupt", "v1")
    digest = manifest["layers"][0]["digest"]
    path = registries.blob_path(digest)
    with open(path, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    before = sorted(os.listdir(pull_paths.root)) if os.path.isdir(pull_paths.root) else []
    with pytest.raises(registry.DigestMismatch, match=f"digest mismatch for {digest}"):
        pull.pull(pull_paths, f"{pushed['host']}/bkp/corrupt:v1")
    assert subvolumes(pull_paths) == []
    assert images.list_all(pull_paths) == []
    assert layer_store.list_all(pull_paths) == []
    assert not os.listdir(os.path.join(pull_paths.root, "tmp"))
    assert set(os.listdir(pull_paths.root)) - set(before) <= {"tmp", "layers", "lock"}
    assert os.listdir(pull_paths.layers) == [".pins"]
    assert os.listdir(os.path.join(pull_paths.layers, ".pins")) == []


def test_unreachable_registry(pull_paths, monkeypatch):
    monkeypatch.setattr(registry, "BACKOFF", 0.01)
    from conftest_pull import free_port
    with pytest.raises(registry.RegistryError, match="cannot reach registry"):
        pull.pull(pull_paths, f"127.0.0.1:{free_port()}/x:y")


# ---------------------------------------------------------------- auth

@pytest.fixture
def docker_env(registries, monkeypatch, tmp_path):
    """A private DOCKER_CONFIG and certs.d holding the test CA."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    certs = tmp_path / "certs.d"
    (certs / registries.tls).mkdir(parents=True)
    shutil.copy(registries.ca, certs / registries.tls / "ca.crt")
    monkeypatch.setenv("BOCKER_CERTS_DIR", str(certs))
    return tmp_path


def test_basic_auth_over_tls(pull_paths, pushed, registries, docker_env):
    ref = f"{registries.tls}/bkp/auth:v1"
    with pytest.raises(registry.AuthError, match="authentication required"):
        pull.pull(pull_paths, ref)
    with pytest.raises(registry.AuthError, match="refused|authentication required"):
        registry.login(registries.tls, "bkpuser", "wrong")
    assert not os.path.exists(docker_env / "docker" / "config.json")
    registry.login(registries.tls, "bkpuser", "bkp-secret")
    config = json.loads((docker_env / "docker" / "config.json").read_text())
    assert registries.tls in config["auths"]
    assert stat.S_IMODE(os.stat(docker_env / "docker" / "config.json").st_mode) == 0o600
    result = pull.pull(pull_paths, ref)
    assert open(f"{rootfs(pull_paths, result.image_id)}/etc/marker").read() == "auth\n"
    client = registry.Client(registries.tls)
    assert client.base().startswith("https://")


def test_tls_without_ca_fails(pull_paths, pushed, registries, monkeypatch, tmp_path):
    monkeypatch.setenv("BOCKER_CERTS_DIR", str(tmp_path))
    monkeypatch.setattr(registry, "BACKOFF", 0.01)
    with pytest.raises(registry.RegistryError):
        registry.Client(registries.tls, credentials=("bkpuser", "bkp-secret")).ping()


def test_token_auth(pull_paths, pushed, registries, docker_env):
    registries.token.requests.clear()
    result = pull.pull(pull_paths, f"{registries.tokened}/bkp/single:v1")
    assert images.load(pull_paths, result.image_id)["config"]["Cmd"] == CONFIG["Cmd"]
    scopes = {q.get("scope") for _, q, _ in registries.token.requests}
    assert "repository:bkp/single:pull" in scopes
    assert all(q.get("service") == registries.token.service
               for _, q, _ in registries.token.requests)


def test_token_auth_with_credentials(pull_paths, pushed, registries, docker_env):
    registries.token.users = {"bkpuser": "bkp-secret"}
    try:
        with pytest.raises(registry.AuthError):
            pull.pull(pull_paths, f"{registries.tokened}/bkp/single:v1")
        credentials.save_credentials(registries.tokened, "bkpuser", "bkp-secret")
        registries.token.requests.clear()
        pull.pull(pull_paths, f"{registries.tokened}/bkp/single:v1")
        assert registries.token.requests[-1][2].startswith("Basic ")
        assert registries.token.requests[-1][1]["account"] == "bkpuser"
    finally:
        registries.token.users = None


def test_insecure_registry_flag_allows_unverified_tls(pull_paths, pushed, registries, monkeypatch,
                                                      tmp_path):
    monkeypatch.setenv("BOCKER_CERTS_DIR", str(tmp_path))  # no CA for it
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    credentials.save_credentials(registries.tls, "bkpuser", "bkp-secret")
    with pytest.raises(registry.RegistryError, match="cannot reach"):
        pull.pull(pull_paths, f"{registries.tls}/bkp/auth:v1")
    result = pull.pull(pull_paths, f"{registries.tls}/bkp/auth:v1",
                       insecure_registries=[registries.tls])
    assert open(f"{rootfs(pull_paths, result.image_id)}/etc/marker").read() == "auth\n"


def test_concurrent_pulls_share_layers(pull_paths, pushed):
    import threading
    ref = f"{pushed['host']}/bkp/whiteouts:v1"
    results, errors = [], []

    def go():
        try:
            results.append(pull.pull(pull_paths, ref))
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(layer_store.list_all(pull_paths)) == 3
    named = [r for r in images.list_all(pull_paths) if r["names"]]
    assert len(named) == 1 and named[0]["names"] == [ref]
    assert not [e for e in os.listdir(pull_paths.layers) if e.startswith(".tmp")]


def test_image_without_layers(pull_paths, pushed):
    result = pull.pull(pull_paths, f"{pushed['host']}/bkp/empty:v1")
    assert os.listdir(rootfs(pull_paths, result.image_id)) == []
    assert images.load(pull_paths, result.image_id)["config"] == {"Cmd": ["/nothing"]}


def test_pinned_layers_survive_prune(pull_paths, pushed):
    from bocker import state
    result = pull.pull(pull_paths, f"{pushed['host']}/bkp/single:v1")
    chain = images.load(pull_paths, result.image_id)["layers"]
    with layer_store.pinned(pull_paths, chain):
        images.remove(pull_paths, result.image_id)  # prunes, but the pin holds
        assert layer_store.list_all(pull_paths) == chain
    # A pin left by a dead process does not hold anything.
    state.write_json(os.path.join(pull_paths.layers, ".pins", "stale"),
                     {"pid": 2 ** 22 + 1, "layers": chain})
    with state.locked(pull_paths.lock):
        assert layer_store.prune(pull_paths, set()) == chain
    assert os.listdir(os.path.join(pull_paths.layers, ".pins")) == []
