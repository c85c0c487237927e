"""A client for the Docker Registry HTTP API v2 / OCI distribution spec.

Manifests are asked for with all four media types in Accept (registry 2.8
answers 404 to an OCI request lacking the OCI type and downgrades a Docker
manifest to schema1 when the Docker type is missing).  Auth: anonymous,
bearer tokens from the WWW-Authenticate challenge, basic; credentials come
from Docker's config.json `auths`.  HTTPS is verified (a custom CA from
/etc/docker/certs.d/<host:port>/ca.crt as Docker does); plain HTTP only for
loopback registries or ones named insecure.  Every blob is hashed while it
streams and checked against its digest.
"""
import base64
import hashlib
import ipaddress
import json
import os
import platform as _platform
import re
import time
import warnings

import requests

from bocker.errors import BockerError, InvalidArgument, NoSuchImage, NotFound
from bocker.image import digest as _digest
from bocker.image import reference as _reference

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)

CERTS_DIR = "/etc/docker/certs.d"
TIMEOUT = (10, 60)          # connect, read (seconds)
RETRIES = 4                 # attempts on 5xx and connection errors
BACKOFF = 0.5               # seconds, doubled each retry
MAX_MANIFEST = 4 << 20
_CHUNK = 1 << 16


class RegistryError(BockerError):
    """The registry failed, refused, or sent something unusable."""


class AuthError(RegistryError):
    """Credentials missing or refused."""


class DigestMismatch(RegistryError):
    def __init__(self, digest):
        super().__init__(f"digest mismatch for {digest}")
        self.digest = digest


# ---------------------------------------------------------------- helpers

def verify_digest(digest, data):
    """Raise DigestMismatch unless data hashes to digest."""
    _hasher(digest)
    if _hash_of(data) != digest:
        raise DigestMismatch(digest)


def _hasher(digest):
    _digest.check(digest)  # sha256 only: anything else is refused by name
    return hashlib.sha256()


def _hash_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_loopback(host):
    """True for localhost / 127.0.0.0/8 / ::1 (with or without a port)."""
    name = host
    if name.startswith("["):
        name = name[1:name.index("]")]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_challenge(header):
    """('bearer', {realm, service, scope}) from a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest))
    return scheme.lower(), params


# ---------------------------------------------------------------- platforms

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform():
    """(os, architecture, variant) of this machine, in OCI spelling."""
    machine = _platform.machine()
    variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine)
    return "linux", _ARCH.get(machine, machine), variant


def parse_platform(text):
    """'linux/arm64[/v8]' -> ('linux', 'arm64', 'v8' or None)."""
    parts = text.split("/") if text else []
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform '{text}': use os/arch[/variant]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def select_platform(index, want):
    """The descriptor of index that matches want (os, arch, variant).

    Attestation manifests (and 'unknown/unknown' entries) are skipped.  No
    variant asked for means any, preferring none or arm64's v8.
    """
    os_, arch, variant = want
    found = []
    entries = index.get("manifests") if isinstance(index, dict) else None
    for desc in entries if isinstance(entries, list) else []:
        if not isinstance(desc, dict):
            continue
        plat = desc.get("platform") or {}
        ann = desc.get("annotations") or {}
        if not isinstance(plat, dict) or not isinstance(ann, dict):
            continue
        if ann.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if plat.get("os") != os_ or plat.get("architecture") != arch:
            continue
        have = plat.get("variant")
        if arch == "arm64" and have in (None, "v8") and variant in (None, "v8"):
            found.append((0, desc))
        elif variant is None or have == variant:
            found.append((0 if have is None else 1, desc))
    if not found:
        name = "/".join(p for p in want if p)
        raise NotFound(f"no image for platform {name}")
    return min(found, key=lambda f: f[0])[1]


# ---------------------------------------------------------------- credentials

def docker_config_path():
    """Docker's config.json: $DOCKER_CONFIG/config.json or ~/.docker/config.json."""
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def _auth_keys(registry):
    if registry == _reference.DOCKER_HUB:
        return ["https://index.docker.io/v1/", "index.docker.io", "docker.io",
                "registry-1.docker.io"]
    return [registry, f"https://{registry}", f"http://{registry}",
            f"https://{registry}/v1/", f"https://{registry}/v2/"]


def load_credentials(registry, path=None):
    """(user, password) for registry from Docker's config.json, or None.

    As Docker: a credHelpers entry for the registry, else credsStore, names
    a docker-credential-<name> program to ask; else `auths` holds them.
    """
    try:
        with open(path or docker_config_path()) as f:
            config = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    keys = _auth_keys(registry)
    helpers = config.get("credHelpers") or {}
    helper = next((helpers[k] for k in keys if k in helpers), None) or config.get("credsStore")
    if helper:
        found = _from_helper(helper, keys[0])
        if found:
            return found
    auths = config.get("auths") or {}
    for key in keys:
        entry = auths.get(key)
        if entry and entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
    return None


def _from_helper(helper, server):
    import subprocess
    try:
        out = subprocess.run([f"docker-credential-{helper}", "get"], input=server.encode(),
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None  # "credentials not found in native keychain"
    try:
        answer = json.loads(out.stdout)
        return answer["Username"], answer["Secret"]
    except (ValueError, KeyError):
        return None


def save_credentials(registry, user, password, path=None):
    """Store credentials as `docker login` does (config.json, mode 0600)."""
    path = path or docker_config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        with open(path) as f:
            config = json.load(f)
    except (FileNotFoundError, ValueError):
        config = {}
    key = _auth_keys(registry)[0]
    config.setdefault("auths", {})[key] = {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent="\t")
    os.rename(tmp, path)


# ---------------------------------------------------------------- the client

class Client:
    """One registry, as host[:port] (Docker Hub's name is mapped to its API)."""

    def __init__(self, registry, *, insecure=False, credentials=None, certs_dir=None,
                 timeout=TIMEOUT, retries=RETRIES, backoff=BACKOFF):
        self.registry = _reference.normalize_registry(registry)
        self.host = (_reference.DOCKER_HUB_API if self.registry == _reference.DOCKER_HUB
                     else self.registry)
        self.explicitly_insecure = insecure
        self.insecure = insecure or is_loopback(self.host)
        self.credentials = credentials if credentials is not None else load_credentials(
            self.registry)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "bocker/0.1"
        self.verify = True
        self._tls(certs_dir or os.environ.get("BOCKER_CERTS_DIR") or CERTS_DIR)
        self._base = None
        self._tokens = {}        # scope -> bearer token
        self._challenge = None   # (scheme, params) from the last 401

    def _tls(self, certs_dir):
        # Docker's per-registry trust: certs.d/<host:port>/ca.crt (and any
        # *.crt) are CAs, client.cert + client.key a client certificate.
        directory = os.path.join(certs_dir, self.host)
        if not os.path.isdir(directory):
            return
        cas = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                     if f.endswith(".crt"))
        if cas:
            self.verify = cas[0] if len(cas) == 1 else _bundle(cas, directory)
        cert, key = (os.path.join(directory, f) for f in ("client.cert", "client.key"))
        if os.path.exists(cert) and os.path.exists(key):
            self.session.cert = (cert, key)

    # -- transport

    def base(self):
        """https://host, or http://host for a registry allowed plain HTTP.

        HTTPS is verified.  A registry named insecure may also fall back to
        unverified HTTPS (as Docker's --insecure-registry does); one on
        loopback or named insecure may fall back to plain HTTP.
        """
        if self._base is None:
            tries = [("https", self.verify)]
            if self.explicitly_insecure:
                tries.append(("https", False))
            if self.insecure:
                tries.append(("http", None))
            last = None
            for scheme, verify in tries:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # urllib3's unverified-TLS warning
                        probe = self._send("GET", f"{scheme}://{self.host}/v2/", attempts=1,
                                           verify=verify)
                    probe.close()
                    if probe.status_code not in (200, 401):
                        # e.g. 400 from a TLS server spoken to in plain HTTP:
                        # the earlier TLS failure is the better reason.
                        last = last or RegistryError(f"HTTP {probe.status_code} on /v2/")
                        continue
                    self._base, self.verify = f"{scheme}://{self.host}", verify
                    if verify is False:  # chosen by the user: do not warn per request
                        import urllib3
                        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
                    break
                except (requests.exceptions.SSLError, requests.ConnectionError) as e:
                    last = e
            else:
                raise RegistryError(f"cannot reach registry {self.host}: {_why(last)}")
        return self._base

    def _send(self, method, url, attempts=None, **kw):
        """One request with retries on 5xx and connection errors."""
        kw.setdefault("timeout", self.timeout)
        if url.startswith(f"https://{self.host}/"):
            # Explicitly: requests lets $REQUESTS_CA_BUNDLE beat session.verify.
            if kw.get("verify") is None:
                kw["verify"] = self.verify
        attempts = attempts or self.retries
        for attempt in range(attempts):
            try:
                response = self.session.request(method, url, **kw)
            except (requests.ConnectionError, requests.Timeout):
                if attempt + 1 == attempts:
                    raise
            else:
                if response.status_code < 500 or attempt + 1 == attempts:
                    return response
                response.close()
            time.sleep(self.backoff * (2 ** attempt))
        raise AssertionError("unreachable")

    def request(self, method, path, scope=None, headers=None, stream=False):
        """A request to the registry API, answering auth challenges."""
        url = self.base() + path
        headers = dict(headers or {})
        for attempt in range(2):
            auth = self._authorization(scope)
            if auth:
                headers["Authorization"] = auth
            try:
                response = self._send(method, url, headers=headers, stream=stream)
            except (requests.ConnectionError, requests.Timeout) as e:
                raise RegistryError(f"registry {self.host}: {_why(e)}") from None
            if response.status_code != 401 or attempt:
                break
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            self._answer(parse_challenge(challenge), scope)
        if response.status_code == 401:
            response.close()
            raise AuthError(f"{self.host}: authentication required"
                            + ("" if self.credentials else " (run 'bocker login')"))
        return response

    def _authorization(self, scope):
        if self._challenge is None:
            return None
        scheme, _ = self._challenge
        if scheme == "bearer" and scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if scheme == "basic" and self.credentials:
            return "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        return None

    def _answer(self, challenge, scope):
        self._challenge = challenge
        scheme, params = challenge
        if scheme == "basic":
            if not self.credentials:
                raise AuthError(f"{self.host}: authentication required (run 'bocker login')")
            return
        if scheme != "bearer" or "realm" not in params:
            raise AuthError(f"{self.host}: unsupported authentication '{scheme}'")
        query = {"service": params["service"]} if "service" in params else {}
        if scope:
            query["scope"] = scope
        if self.credentials:
            query["account"] = self.credentials[0]
        try:
            response = self._send("GET", params["realm"], params=query,
                                  auth=tuple(self.credentials) if self.credentials else None)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise AuthError(f"token server {params['realm']}: {_why(e)}") from None
        if response.status_code in (401, 403):
            raise AuthError(f"{self.host}: credentials refused")
        if response.status_code != 200:
            raise AuthError(f"token server {params['realm']}: HTTP {response.status_code}")
        try:
            body = response.json()
            self._tokens[scope] = body.get("token") or body["access_token"]
        except (ValueError, KeyError):
            raise AuthError(f"token server {params['realm']}: no token in answer") from None

    # -- API

    def ping(self):
        """Check that the registry answers /v2/ and accepts our credentials."""
        response = self.request("GET", "/v2/")
        response.close()
        if response.status_code != 200:
            raise RegistryError(f"{self.host}: HTTP {response.status_code} on /v2/")

    def manifest(self, repository, ref):
        """(media_type, raw bytes, digest) of a manifest by tag or digest."""
        if ":" in ref:  # a digest (tags have no colon): checked before the URL
            _digest.check(ref, "manifest digest")
        response = self.request("GET", f"/v2/{repository}/manifests/{ref}",
                                scope=f"repository:{repository}:pull",
                                headers={"Accept": ", ".join(MANIFEST_TYPES)}, stream=True)
        with response:
            if response.status_code == 404:
                raise NoSuchImage(f"{self.registry}/{repository}"
                                  + (f"@{ref}" if ":" in ref else f":{ref}"))
            if response.status_code != 200:
                raise RegistryError(f"{self.host}: HTTP {response.status_code} "
                                    f"for manifest {repository}:{ref}")
            raw = response.raw.read(MAX_MANIFEST + 1, decode_content=True)
        if len(raw) > MAX_MANIFEST:
            raise RegistryError(f"manifest {repository}:{ref} is too large")
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        if ":" in ref:
            verify_digest(ref, raw)
            digest = ref
        else:
            digest = _hash_of(raw)
        try:
            doc = json.loads(raw)
        except ValueError:
            raise RegistryError(f"manifest {repository}:{ref} is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"manifest {repository}:{ref} is not a JSON object")
        media = doc.get("mediaType") or media
        if doc.get("schemaVersion") == 1 or "schema1" in media:
            raise RegistryError(f"{repository}:{ref}: schema1 manifests are not supported")
        if media not in MANIFEST_TYPES:
            media = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
        return media, raw, digest

    def resolve(self, repository, ref, platform=None):
        """(manifest dict, its digest, the digest the ref named) for a platform.

        An index is resolved to platform (os, arch, variant), default the host's.
        """
        media, raw, digest = self.manifest(repository, ref)
        top = digest
        if media in INDEX_TYPES:
            desc = select_platform(json.loads(raw), platform or host_platform())
            media, raw, digest = self.manifest(repository, _digest.check(
                desc.get("digest"), "manifest digest"))
            if media in INDEX_TYPES:
                raise RegistryError(f"{repository}:{ref}: nested index is not supported")
        return json.loads(raw), digest, top

    def blob_bytes(self, repository, digest, limit=MAX_MANIFEST):
        """A small blob (a config) in memory, verified."""
        response = self._blob_response(repository, digest)
        with response:
            data = response.raw.read(limit + 1, decode_content=False)
        if len(data) > limit:
            raise RegistryError(f"blob {digest} is too large")
        verify_digest(digest, data)
        return data

    def _blob_response(self, repository, digest, headers=None):
        _digest.check(digest, "blob digest")  # before it becomes part of a URL
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}",
                                scope=f"repository:{repository}:pull",
                                headers=headers, stream=True)
        if response.status_code == 404:
            response.close()
            raise RegistryError(f"{self.host}: blob {digest} not found in {repository}")
        if response.status_code not in (200, 206):
            response.close()
            raise RegistryError(f"{self.host}: HTTP {response.status_code} for blob {digest}")
        return response

    def download(self, repository, digest, dest, size=None, progress=None):
        """Stream a blob into the file dest, hashing as it comes.

        An interrupted transfer resumes with Range (or restarts when the
        registry ignores it).  On a digest or size mismatch dest is removed
        and DigestMismatch raised.  progress(n) is called per chunk.
        """
        h = _hasher(digest)
        done = 0
        with open(dest, "wb") as out:
            for attempt in range(self.retries):
                headers = {"Range": f"bytes={done}-"} if done else None
                try:
                    response = self._blob_response(repository, digest, headers)
                    with response:
                        if done and response.status_code != 206:
                            out.seek(0)
                            out.truncate()
                            h, done = _hasher(digest), 0
                            if progress:
                                progress(None)  # restart
                        for chunk in response.raw.stream(_CHUNK, decode_content=False):
                            out.write(chunk)
                            h.update(chunk)
                            done += len(chunk)
                            if size is not None and done > size:
                                break
                            if progress:
                                progress(len(chunk))
                    break
                except (requests.ConnectionError, requests.Timeout,
                        requests.exceptions.ChunkedEncodingError,
                        _urllib3_errors()) as e:
                    if attempt + 1 == self.retries:
                        os.unlink(dest)
                        raise RegistryError(f"download of {digest}: {_why(e)}") from None
                    time.sleep(self.backoff * (2 ** attempt))
                except BaseException:
                    os.unlink(dest)
                    raise
        if "sha256:" + h.hexdigest() != digest or (size is not None and done != size):
            os.unlink(dest)
            raise DigestMismatch(digest)
        return done


def _urllib3_errors():
    import urllib3.exceptions
    return urllib3.exceptions.HTTPError


def _bundle(cas, directory):
    # requests takes one CA file: concatenate the directory's CAs.
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                        f"bocker-ca-{hashlib.sha256(directory.encode()).hexdigest()[:12]}.pem")
    with open(path, "w") as out:
        for ca in cas:
            with open(ca) as f:
                out.write(f.read() + "\n")
    return path


def _why(e):
    text = str(e)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "Connection refused", "timed out",
                   "Name or service not known"):
        if marker in text:
            return marker.lower().replace("_", " ")
    return text.splitlines()[0][:200] if text else type(e).__name__


def login(registry, user, password, *, insecure=False, certs_dir=None):
    """Check credentials against the registry, then store them (config.json)."""
    registry = _reference.normalize_registry(registry)
    client = Client(registry, insecure=insecure, credentials=(user, password),
                    certs_dir=certs_dir)
    client.ping()
    save_credentials(registry, user, password)
    return registry
