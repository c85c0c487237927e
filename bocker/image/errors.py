"""Errors of fetching image content: from a registry, or checked against a digest."""
from bocker.errors import BockerError


class RegistryError(BockerError):
    """The registry failed, refused, or sent something unusable."""


class AuthError(RegistryError):
    """Credentials missing or refused."""


class DigestMismatch(RegistryError):
    """Content (a blob, manifest or archive layer) that does not hash to its digest."""

    def __init__(self, digest):
        super().__init__(f"digest mismatch for {digest}")
        self.digest = digest
