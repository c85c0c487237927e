"""Image references, normalised as Docker does.  Pure: no I/O.

    busybox                 -> docker.io/library/busybox:latest
    user/app:1.0            -> docker.io/user/app:1.0
    registry:5000/x/y       -> registry:5000/x/y:latest
    x@sha256:<64 hex>       -> docker.io/library/x@sha256:...

A first path component is a registry host when it contains a '.' or a ':'
or is 'localhost' (Docker's rule); otherwise the image is on Docker Hub.
"""
import re
from typing import NamedTuple, Optional

from bocker.errors import InvalidArgument
from bocker.image import names

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_LEGACY_HUB = {"index.docker.io", "registry-1.docker.io", "docker.io"}

# Names, hosts and tags follow Docker's grammar in bocker.image.names.
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}\Z")


class Reference(NamedTuple):
    """A fully qualified reference; tag is None only when pulling by digest."""

    registry: str
    repository: str
    tag: Optional[str]
    digest: Optional[str]

    @property
    def name(self):
        """registry/repository, e.g. docker.io/library/busybox."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self):
        """What to ask the registry's manifests endpoint for."""
        return self.digest or self.tag

    @property
    def api_host(self):
        """host[:port] to talk to: Docker Hub's API lives on another host."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def familiar_name(self):
        """The short repository name Docker shows: busybox, user/app, reg:5000/x."""
        if self.registry == DOCKER_HUB:
            return self.repository[len("library/"):] if self.repository.startswith(
                "library/") and self.repository.count("/") == 1 else self.repository
        return self.name

    def familiar(self):
        """busybox:latest, reg:5000/x/y:1, user/app@sha256:..."""
        out = self.familiar_name()
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def __str__(self):
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def split_registry(name):
    """Split a repository name into (registry, path) with Docker's rule."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"
                  or first != first.lower()):
        return first, rest
    return DOCKER_HUB, name


def normalize_registry(host):
    """Docker Hub has many spellings; every other host is kept as written."""
    if host in _LEGACY_HUB or host in ("https://index.docker.io/v1/",):
        return DOCKER_HUB
    return host


def parse(text, tag=None):
    """Parse NAME[:TAG][@DIGEST] into a Reference.

    tag, if given (p8952/bocker's `pull NAME TAG`), must not clash with a
    tag or digest already in text.  Raises InvalidArgument.
    """
    if not text or len(text) > 4096 or any(c.isspace() for c in text):
        raise InvalidArgument(f"invalid reference format: '{text}'")
    rest, at, digest = text.partition("@")
    if at:
        if not _DIGEST.match(digest):
            raise InvalidArgument(f"invalid digest in '{text}'")
        if not digest.startswith("sha256:"):
            # sha256 is the only algorithm bocker verifies (see digest.py).
            raise InvalidArgument(f"unsupported digest algorithm in '{text}': "
                                  f"only sha256 is supported")
        if not _SHA256.match(digest):
            raise InvalidArgument(f"invalid digest in '{text}'")
    else:
        digest = None
    own_tag = None
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        rest, own_tag = rest[:colon], rest[colon + 1:]
        if not names.is_tag(own_tag):
            raise InvalidArgument(f"invalid tag in '{text}'")
    if tag is not None:
        if own_tag is not None or digest:
            raise InvalidArgument(f"'{text}' already names a tag or digest")
        if not names.is_tag(tag):
            raise InvalidArgument(f"invalid tag '{tag}'")
        own_tag = tag
    registry, path = split_registry(rest)
    if registry != DOCKER_HUB and not names.is_domain(registry):
        raise InvalidArgument(f"invalid registry in '{text}'")
    registry = normalize_registry(registry)
    parts = path.split("/")
    if not path or not all(names.is_component(p) for p in parts):
        if path != path.lower():
            raise InvalidArgument(f"invalid reference format: repository name must be "
                                  f"lowercase: '{text}'")
        raise InvalidArgument(f"invalid reference format: '{text}'")
    if registry == DOCKER_HUB and len(parts) == 1:
        path = f"library/{path}"
    if len(registry) + 1 + len(path) > 255:
        raise InvalidArgument(f"repository name too long: '{text}'")
    if own_tag is None and digest is None:
        own_tag = "latest"
    return Reference(registry, path, own_tag, digest)
