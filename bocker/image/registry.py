"""A client for the Docker Registry HTTP API v2 / OCI distribution spec.

Composes transport.py (TLS, scheme, retries, resumable streams), auth.py
(challenges and tokens) and credentials.py (Docker's config.json) into the
calls a pull makes: ping, manifest, resolve (an index to this platform, see
platforms.py), blob_bytes, download; and login.

Manifests are asked for with all four media types in Accept (registry 2.8
answers 404 to an OCI request lacking the OCI type and downgrades a Docker
manifest to schema1 when the Docker type is missing).  Every digest is
checked (digest.py) before it becomes part of a URL, and every manifest
and blob is verified against its digest.
"""
import json

import requests

from bocker.errors import InvalidArgument, NoSuchImage
from bocker.image import credentials as _credentials
from bocker.image import digest as _digest
from bocker.image import platforms
from bocker.image import reference as _reference
from bocker.image.auth import Auth
from bocker.image.errors import AuthError, DigestMismatch, RegistryError
from bocker.image.transport import BACKOFF, RETRIES, TIMEOUT, Transport, why

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)

MAX_MANIFEST = 4 << 20

# The client and the errors it raises (defined in errors.py, shared with load).
__all__ = ["Client", "login", "RegistryError", "AuthError", "DigestMismatch",
           "OCI_INDEX", "OCI_MANIFEST", "DOCKER_LIST", "DOCKER_MANIFEST", "MANIFEST_TYPES",
           "INDEX_TYPES", "MAX_MANIFEST", "BACKOFF"]


class Client:
    """One registry, as host[:port] (Docker Hub's name is mapped to its API)."""

    def __init__(self, registry, *, insecure=False, credentials=None, certs_dir=None,
                 timeout=TIMEOUT, retries=RETRIES, backoff=BACKOFF):
        self.registry = _reference.normalize_registry(registry)
        self.host = (_reference.DOCKER_HUB_API if self.registry == _reference.DOCKER_HUB
                     else self.registry)
        self.credentials = credentials if credentials is not None else (
            _credentials.load_credentials(self.registry))
        self.transport = Transport(self.host, insecure=insecure, certs_dir=certs_dir,
                                   timeout=timeout, retries=retries, backoff=backoff)
        self.auth = Auth(self.host, self.credentials)

    def base(self):
        """https://host or http://host, whichever this registry answers (transport.base)."""
        return self.transport.base()

    def request(self, method, path, scope=None, headers=None, stream=False):
        """A request to the registry API, answering one auth challenge."""
        url = self.base() + path
        headers = dict(headers or {})
        for attempt in range(2):
            auth = self.auth.header(scope)
            if auth:
                headers["Authorization"] = auth
            try:
                response = self.transport.send(method, url, headers=headers, stream=stream)
            except (requests.ConnectionError, requests.Timeout) as e:
                raise RegistryError(f"registry {self.host}: {why(e)}") from None
            if response.status_code != 401 or attempt:
                break
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            self.auth.answer(challenge, scope, self.transport.send)
        if response.status_code == 401:
            response.close()
            raise AuthError(f"{self.host}: authentication required"
                            + ("" if self.credentials else " (run 'bocker login')"))
        return response

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
            _digest.verify(ref, raw)
            digest = ref
        else:
            digest = _digest.of_bytes(raw)
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
            desc = platforms.select_platform(json.loads(raw),
                                             platform or platforms.host_platform())
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
        _digest.verify(digest, data)
        return data

    def _blob_response(self, repository, digest, headers=None):
        """The open response for a blob (200, or 206 to a Range); raises on anything else."""
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
        """Stream a blob into the file dest, verified; see Transport.download."""
        return self.transport.download(
            lambda headers: self._blob_response(repository, digest, headers),
            digest, dest, size, progress)


def _check_host(registry):
    """HOST[:PORT] as Docker's grammar has it, the port in range: refused
    here in one line rather than by the URL parser mid-request."""
    from bocker.image import names

    tail = registry.rsplit("]", 1)[-1]          # after a bracketed IPv6 address
    port = tail.rpartition(":")[2] if ":" in tail else None
    if not names.is_domain(registry) or (port is not None and not 0 < int(port) < 65536):
        raise InvalidArgument(f"invalid registry '{registry}': use HOST[:PORT]")


def login(registry, user, password, *, insecure=False, certs_dir=None):
    """Check credentials against the registry, then store them (config.json)."""
    registry = _reference.normalize_registry(registry)
    if registry != _reference.DOCKER_HUB:
        _check_host(registry)
    client = Client(registry, insecure=insecure, credentials=(user, password),
                    certs_dir=certs_dir)
    client.ping()
    _credentials.save_credentials(registry, user, password)
    return registry
