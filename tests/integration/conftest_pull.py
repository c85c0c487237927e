"""Fixtures for the pull tests (self-contained; import * from test modules).

- btrfs_fs (session): a sparse file, mkfs.btrfs, a loop device (autoclear)
  and a mount; torn down at the end, checking no mount or loop is left.
- pull_paths (function): a fresh bocker root directory on that filesystem; after
  the test every image is removed through images.remove and no subvolume
  may be left (so rmi must drop unused layers and pulls must clean up).
- registries (session): Debian's docker-registry (distribution 2.8) started
  three times over one storage directory on 127.0.0.1: plain HTTP
  anonymous, TLS + basic auth with a self-signed CA, and token auth with a
  tiny token server; stopped by PID at teardown.
- Image builders: OCI layouts made from /bin/busybox (busybox-static) and
  pushed with skopeo.
"""
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse

import pytest
import requests

from bocker.image import images
from bocker.kernel import native, store
from bocker.state import Paths

TAG = "bkp"
BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "ls", "cat", "echo", "true", "env", "id", "pwd"]


# ---------------------------------------------------------------- btrfs

def _mounts():
    with open("/proc/self/mountinfo") as f:
        return f.read()


@pytest.fixture(scope="session")
def btrfs_fs():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    work = tempfile.mkdtemp(prefix=f"{TAG}-{os.getpid()}-")
    image, mnt = os.path.join(work, "fs.img"), os.path.join(work, "mnt")
    os.mkdir(mnt)
    with open(image, "wb") as f:
        f.truncate(1 << 30)
    subprocess.run(["mkfs.btrfs", "-q", image], check=True, capture_output=True)
    # Keep the device's fd until it is mounted: with autoclear the kernel
    # detaches it when its last user goes, which is then the mount.
    dev, fd = native.loop_attach(image, autoclear=True)
    try:
        native.mount(dev, mnt, "btrfs")
    finally:
        os.close(fd)
    try:
        yield mnt
    finally:
        native.umount(mnt)
        os.unlink(image)
        shutil.rmtree(work)
        assert mnt not in _mounts(), "btrfs mount left behind"
        # autoclear detaches the loop device once it is unmounted
        backing = f"/sys/block/{os.path.basename(dev)}/loop/backing_file"
        for _ in range(50):
            if not os.path.exists(backing) or image not in open(backing).read():
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"loop device {dev} left behind")


@pytest.fixture
def pull_paths(btrfs_fs):
    # Each test's root is a subvolume of its own, so leftovers are easy to list.
    root = os.path.join(btrfs_fs, f"root-{os.urandom(4).hex()}")
    store.create(root)
    p = Paths(root)
    yield p
    for record in images.list_all(p):
        images.remove(p, record["id"])
    left = store.list_subvolumes(root)
    store.delete(root)
    assert left == [], f"subvolumes left behind: {left}"


def subvolumes(paths):
    """Subvolumes below a bocker root (relative paths)."""
    return store.list_subvolumes(paths.root)


# ---------------------------------------------------------------- helpers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def _wait_http(url, verify=True, proc=None):
    for _ in range(100):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited {proc.returncode}")
        try:
            requests.get(url, timeout=1, verify=verify)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


# ---------------------------------------------------------------- certificates

def make_ca_and_cert(directory):
    """A self-signed CA and a server certificate for 127.0.0.1 it signed."""
    ca_key, ca_crt = (os.path.join(directory, n) for n in ("ca.key", "ca.crt"))
    key, csr, crt = (os.path.join(directory, n) for n in ("srv.key", "srv.csr", "srv.crt"))
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
          "-out", ca_crt, "-days", "2", "-subj", f"/CN={TAG} test CA"])
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
          "-subj", "/CN=127.0.0.1"])
    _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
          "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    return ca_crt, crt, key


# ---------------------------------------------------------------- token server

class TokenServer:
    """A tiny token service (Docker Hub's flow): GET /token?service&scope.

    Grants what the scope asks for; with users set, only to a matching
    basic-auth login.  Tokens are RS256 JWTs signed with openssl, carrying
    the signing certificate in x5c (the registry trusts it as a root).
    """

    def __init__(self, directory, service, issuer):
        self.key = os.path.join(directory, "token.key")
        self.crt = os.path.join(directory, "token.crt")
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
              "-out", self.crt, "-days", "2", "-subj", f"/CN={TAG} token signer"])
        der = subprocess.run(["openssl", "x509", "-in", self.crt, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.service, self.issuer = service, issuer
        self.requests = []
        self.users = None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                auth = self.headers.get("Authorization")
                server.requests.append((url.path, query, auth))
                if server.users is not None:
                    want = {"Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
                            for u, p in server.users.items()}
                    if auth not in want:
                        self.send_response(401)
                        self.end_headers()
                        return
                body = json.dumps({"token": server.mint(query.get("scope"))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def mint(self, scope):
        access = []
        for item in (scope or "").split(" "):
            if item.count(":") >= 2:
                kind, rest = item.split(":", 1)
                name, actions = rest.rsplit(":", 1)
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "anonymous", "aud": self.service,
                  "exp": now + 600, "nbf": now - 60, "iat": now,
                  "jti": base64.b16encode(os.urandom(8)).decode(), "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing_input.encode(), check=True,
                             capture_output=True).stdout
        return f"{signing_input}.{_b64(sig)}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---------------------------------------------------------------- registries

class Registries:
    """Three docker-registry processes over one storage directory."""

    def __init__(self, work):
        self.work = work
        self.storage = os.path.join(work, "storage")
        os.mkdir(self.storage)
        self.procs = []
        self.users = {"bkpuser": "bkp-secret"}
        certs = os.path.join(work, "certs")
        os.mkdir(certs)
        self.ca, crt, key = make_ca_and_cert(certs)
        htpasswd = os.path.join(work, "htpasswd")
        import bcrypt
        with open(htpasswd, "w") as f:
            for user, password in self.users.items():
                f.write(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}\n")
        self.token = TokenServer(work, f"{TAG}-registry", f"{TAG}-issuer")
        self.plain = self._start("plain", "")
        self.tls = self._start("tls", f"""
  tls:
    certificate: {crt}
    key: {key}
auth:
  htpasswd:
    realm: {TAG}
    path: {htpasswd}
""", scheme="https")
        self.tokened = self._start("token", f"""
auth:
  token:
    realm: {self.token.realm}
    service: {self.token.service}
    issuer: {self.token.issuer}
    rootcertbundle: {self.token.crt}
""")

    def _start(self, name, extra, scheme="http"):
        port = free_port()
        config = os.path.join(self.work, f"{name}.yml")
        with open(config, "w") as f:
            f.write(f"""version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {self.storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {TAG}-secret
{extra}""")
        log = open(os.path.join(self.work, f"{name}.log"), "wb")
        proc = subprocess.Popen(["docker-registry", "serve", config], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        _wait_http(f"{scheme}://127.0.0.1:{port}/v2/", verify=self.ca if scheme == "https"
                   else True, proc=proc)
        return f"127.0.0.1:{port}"

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.token.stop()

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd,
                            "data")


@pytest.fixture(scope="session")
def registries():
    for tool in ("docker-registry", "skopeo", "openssl"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")
    work = tempfile.mkdtemp(prefix=f"{TAG}-reg-{os.getpid()}-")
    regs = None
    try:
        regs = Registries(work)
        yield regs
    finally:
        if regs:
            regs.stop()
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- images

def tar_layer(entries):
    """A layer tar from (name, kind, data/linkname, mode) tuples; returns bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            extra = rest[0] if rest else None
            info.mode = rest[1] if len(rest) > 1 else (0o755 if kind in ("dir", "exe") else 0o644)
            if kind in ("file", "exe"):
                data = extra if isinstance(extra, bytes) else (extra or "").encode()
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            tf.addfile(info)
    return buf.getvalue()


def busybox_layer(marker="base"):
    """bin/busybox + applet symlinks + a little /etc; marker makes it unique."""
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [("bin", "dir"), ("bin/busybox", "exe", bb),
               *[(f"bin/{a}", "sym", "busybox") for a in APPLETS],
               ("etc", "dir"), ("etc/passwd", "file", "root:x:0:0:root:/root:/bin/sh\n"),
               ("etc/group", "file", "root:x:0:\n"), ("etc/marker", "file", marker + "\n"),
               ("tmp", "dir", None, 0o1777), ("root", "dir", None, 0o700)]
    return tar_layer(entries)


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0), "tar+gzip"
    if how == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(data), "tar+zstd"
    return data, "tar"


class Layout:
    """Build an OCI image layout directory by hand."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(directory, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": []}

    def blob(self, data, media_type):
        if isinstance(data, (dict, list)):
            data = json.dumps(data).encode()
        digest = sha256(data)
        with open(os.path.join(self.dir, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(self, layer_tars, compression="gzip", config=None, arch="amd64", variant=None):
        """A manifest descriptor for an image of these (uncompressed) layer tars."""
        descs, diff_ids = [], []
        for tar in layer_tars:
            how = compression if isinstance(compression, str) else compression[len(descs)]
            blob, suffix = compress(tar, how)
            descs.append(self.blob(blob, f"application/vnd.oci.image.layer.v1.{suffix}"))
            diff_ids.append(sha256(tar))
        cfg = {"architecture": arch, "os": "linux",
               "config": config or {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers", "diff_ids": diff_ids},
               "history": [{"created_by": f"{TAG} test"} for _ in diff_ids]}
        if variant:
            cfg["variant"] = variant
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": self.blob(cfg, "application/vnd.oci.image.config.v1+json"),
                    "layers": descs}
        desc = self.blob(manifest, "application/vnd.oci.image.manifest.v1+json")
        desc["platform"] = {"os": "linux", "architecture": arch,
                            **({"variant": variant} if variant else {})}
        return desc

    def tag(self, desc, tag):
        desc = dict(desc, annotations={"org.opencontainers.image.ref.name": tag})
        self.index["manifests"].append(desc)
        with open(os.path.join(self.dir, "index.json"), "w") as f:
            json.dump(self.index, f)

    def multi(self, descs):
        """An index blob over several manifest descriptors."""
        return self.blob({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": descs}, "application/vnd.oci.image.index.v1+json")


def push(layout_dir, tag, dest, *, fmt=None, all_=False):
    """skopeo copy an OCI layout's tag into a registry (no TLS)."""
    argv = ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
    if fmt:
        argv += ["--format", fmt]
    if all_:
        argv += ["--all"]
    argv += [f"oci:{layout_dir}:{tag}", f"docker://{dest}"]
    _run(argv)
