"""Registry auth: answering a 401's WWW-Authenticate challenge.

Anonymous until the registry asks.  A Bearer challenge is answered by
asking its realm (the token server) for a token for the scope, with basic
credentials when there are any; tokens are kept per scope.  A Basic
challenge is answered with the credentials themselves.  requests drops the
Authorization header on a redirect to another host, so a blob's CDN never
sees either.
"""
import base64
import re

import requests

from bocker.image.errors import AuthError
from bocker.image.transport import why


def parse_challenge(header):
    """('bearer', {realm, service, scope}) from a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest))
    return scheme.lower(), params


class Auth:
    """The auth state of one registry client: its challenge and tokens."""

    def __init__(self, host, credentials):
        self.host = host
        self.credentials = credentials  # (user, password), or None/() for anonymous
        self._tokens = {}        # scope -> bearer token
        self._challenge = None   # (scheme, params) from the last 401

    def header(self, scope):
        """The Authorization header value for scope, or None (not asked yet)."""
        if self._challenge is None:
            return None
        scheme, _ = self._challenge
        if scheme == "bearer" and scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if scheme == "basic" and self.credentials:
            return "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        return None

    def answer(self, header, scope, send):
        """Meet the challenge in a 401's WWW-Authenticate header for scope.

        send(method, url, **kw) is the transport's retrying request, used
        for the token server.  Raises AuthError when the challenge cannot
        be met (no credentials for Basic, refused, no token, unknown scheme).
        """
        self._challenge = challenge = parse_challenge(header)
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
            response = send("GET", params["realm"], params=query,
                            auth=tuple(self.credentials) if self.credentials else None)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise AuthError(f"token server {params['realm']}: {why(e)}") from None
        if response.status_code in (401, 403):
            raise AuthError(f"{self.host}: credentials refused")
        if response.status_code != 200:
            raise AuthError(f"token server {params['realm']}: HTTP {response.status_code}")
        try:
            body = response.json()
            self._tokens[scope] = body.get("token") or body["access_token"]
        except (ValueError, KeyError):
            raise AuthError(f"token server {params['realm']}: no token in answer") from None
