"""registry.Client transport against a scripted HTTP server on 127.0.0.1:
retries on 5xx, resumed and restarted downloads, digest and size checks,
bearer tokens, and no credentials leaking through a blob redirect."""
import hashlib
import http.server
import json
import threading

import pytest

from bocker.image import registry

BLOB = bytes(range(256)) * 4096          # 1 MiB
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class Server:
    """Each request is logged; script(handler, path) may answer it."""

    def __init__(self, script):
        self.log = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.log.append((self.path, dict(self.headers)))
                script(self, self.path, len(server.log))

            def log_message(self, *args):
                pass

            def reply(self, code, body=b"", headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(monkeypatch):
    monkeypatch.setattr(registry, "BACKOFF", 0.01)
    servers = []

    def start(script):
        servers.append(Server(script))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def client(server, **kw):
    return registry.Client(server.host, credentials=(), backoff=0.01, **kw)


def test_retries_5xx(serve):
    def script(h, path, n):
        if path == "/v2/":
            return h.reply(200)
        if n < 4:
            return h.reply(503)
        body = json.dumps({"schemaVersion": 2, "mediaType": registry.OCI_MANIFEST,
                           "config": {}, "layers": []}).encode()
        h.reply(200, body, [("Content-Type", registry.OCI_MANIFEST)])
    s = serve(script)
    media, raw, digest = client(s).manifest("x", "t")
    assert media == registry.OCI_MANIFEST
    assert [p for p, _ in s.log].count("/v2/x/manifests/t") == 3
    accept = s.log[-1][1]["Accept"]
    for t in registry.MANIFEST_TYPES:
        assert t in accept


def test_gives_up_after_retries(serve):
    s = serve(lambda h, p, n: h.reply(200) if p == "/v2/" else h.reply(502))
    with pytest.raises(registry.RegistryError, match="HTTP 502"):
        client(s).manifest("x", "t")


def _cut(h, data, keep):
    """Promise data, send only keep bytes, drop the connection."""
    h.send_response(200)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data[:keep])
    h.wfile.flush()
    h.close_connection = True
    h.connection.shutdown(2)


@pytest.mark.parametrize("honour_range", [True, False])
def test_interrupted_download_resumes_or_restarts(serve, tmp_path, honour_range):
    def script(h, path, n):
        if path == "/v2/":
            return h.reply(200)
        rng = h.headers.get("Range")
        if rng is None:
            return _cut(h, BLOB, 300_000)
        start = int(rng.split("=")[1].rstrip("-"))
        if honour_range:
            return h.reply(206, BLOB[start:],
                           [("Content-Range", f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}")])
        h.reply(200, BLOB)
    s = serve(script)
    dest = tmp_path / "blob"
    seen = []
    assert client(s).download("x", DIGEST, str(dest), len(BLOB), progress=seen.append) == len(BLOB)
    assert dest.read_bytes() == BLOB
    ranges = [hd.get("Range") for p, hd in s.log if "/blobs/" in p]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert (None in seen) is (not honour_range)  # a restart is reported


def test_digest_and_size_mismatch(serve, tmp_path):
    bad = bytearray(BLOB)
    bad[5000] ^= 1
    s = serve(lambda h, p, n: h.reply(200) if p == "/v2/" else h.reply(200, bytes(bad)))
    dest = tmp_path / "blob"
    with pytest.raises(registry.DigestMismatch, match=f"digest mismatch for {DIGEST}"):
        client(s).download("x", DIGEST, str(dest), len(BLOB))
    assert not dest.exists()
    s2 = serve(lambda h, p, n: h.reply(200) if p == "/v2/" else h.reply(200, BLOB + b"more"))
    with pytest.raises(registry.DigestMismatch):
        client(s2).download("x", DIGEST, str(dest), len(BLOB))
    assert not dest.exists()


def test_missing_blob(serve, tmp_path):
    s = serve(lambda h, p, n: h.reply(200) if p == "/v2/" else h.reply(404))
    with pytest.raises(registry.RegistryError, match="not found"):
        client(s).download("x", DIGEST, str(tmp_path / "b"), len(BLOB))
    assert not (tmp_path / "b").exists()


def test_bearer_token_and_redirect_drops_credentials(serve, tmp_path):
    cdn = serve(lambda h, p, n: h.reply(200, BLOB))
    auth = serve(lambda h, p, n: h.reply(200, json.dumps({"access_token": "T0K"}).encode()))

    def script(h, path, n):
        if h.headers.get("Authorization") != "Bearer T0K":
            return h.reply(401, b"", [("WWW-Authenticate",
                                       f'Bearer realm="http://{auth.host}/token",'
                                       f'service="fake",scope="repository:x:pull"')])
        if path == "/v2/x/blobs/" + DIGEST:
            return h.reply(307, b"", [("Location", f"http://{cdn.host}/data")])
        h.reply(404)
    s = serve(script)
    c = registry.Client(s.host, credentials=("u", "pw"), backoff=0.01)
    c.download("x", DIGEST, str(tmp_path / "b"), len(BLOB))
    assert (tmp_path / "b").read_bytes() == BLOB
    path, headers = auth.log[-1]
    assert "scope=repository%3Ax%3Apull" in path and "service=fake" in path
    assert headers["Authorization"].startswith("Basic ")
    # The CDN got neither the bearer token nor the basic credentials.
    assert "Authorization" not in cdn.log[-1][1]


def test_auth_required_without_credentials(serve):
    s = serve(lambda h, p, n: h.reply(401, b"", [("WWW-Authenticate", 'Basic realm="r"')]))
    with pytest.raises(registry.AuthError, match="authentication required"):
        client(s).manifest("x", "t")


SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def test_schema1_and_bad_manifest_digest(serve):
    def script(h, path, n):
        if path == "/v2/":
            return h.reply(200)
        if path.endswith("/old"):
            return h.reply(200, json.dumps({"schemaVersion": 1}).encode(),
                           [("Content-Type", SCHEMA1)])
        h.reply(200, json.dumps({"schemaVersion": 2, "layers": []}).encode(),
                [("Content-Type", registry.OCI_MANIFEST)])
    s = serve(script)
    with pytest.raises(registry.RegistryError, match="schema1"):
        client(s).manifest("x", "old")
    with pytest.raises(registry.DigestMismatch):
        client(s).manifest("x", "sha256:" + "0" * 64)
