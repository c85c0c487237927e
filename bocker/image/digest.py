"""Content digests from hostile sources, checked before they become paths.

A digest, diff ID or chain ID that an image, registry or archive supplies
ends up in a store path (layers/<hex>), an archive member name
(blobs/sha256/<hex>) or a registry URL (/v2/<repo>/blobs/<digest>).  Each
passes through check() first, so the only thing that can reach a path is
'sha256:' and 64 lowercase hex digits.  Only sha256 is implemented; any
other algorithm (sha512 included) is refused by name rather than half
supported.  Content is checked against a digest here too (verify, hasher).
Pure: no I/O.
"""
import hashlib
import re

from bocker.errors import BockerError
from bocker.image.errors import DigestMismatch

ALGORITHM = "sha256"
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]{64}")
# The OCI grammar for an algorithm name, to tell "another algorithm" from junk.
_ALGO = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")


class BadDigest(BockerError):
    """A digest that is not sha256:<64 lowercase hex>."""


def show(value):
    """A hostile value, safe to print on one line: escaped and cut short."""
    text = ascii(value) if isinstance(value, str) else f"a {type(value).__name__}"
    return text if len(text) <= 90 else text[:80] + "...'"


def check(value, what="digest"):
    """Return value if it is 'sha256:' + 64 lowercase hex; else raise BadDigest.

    what names the field in the message ('diff_id', 'layer digest' ...).
    """
    if isinstance(value, str) and _SHA256.fullmatch(value):
        return value
    if isinstance(value, str):
        algo, sep, _ = value.partition(":")
        if sep and algo != ALGORITHM and _ALGO.fullmatch(algo):
            raise BadDigest(f"unsupported {what} algorithm '{algo}' in {show(value)}: "
                            f"only {ALGORITHM} is supported")
    raise BadDigest(f"invalid {what} {show(value)}: expected sha256:<64 lowercase hex>")


def hex_of(value, what="digest"):
    """The 64 hex digits of a checked digest (what a store path is named by)."""
    return check(value, what)[len(ALGORITHM) + 1:]


def is_hex(name):
    """True for a bare 64-hex name, e.g. a directory read back from the store."""
    return isinstance(name, str) and bool(_HEX.fullmatch(name))


def of_bytes(data):
    """The sha256 digest of data, as 'sha256:<hex>'."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hasher(value, what="digest"):
    """A fresh hash object for content that must match value (checked first)."""
    check(value, what)  # sha256 only: anything else is refused by name
    return hashlib.sha256()


def verify(value, data, what="digest"):
    """Raise DigestMismatch unless data hashes to value (a checked digest)."""
    hasher(value, what)
    if of_bytes(data) != value:
        raise DigestMismatch(value)
