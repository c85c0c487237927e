"""HTTP to one registry host: TLS trust, the scheme, retries, resumable downloads.

HTTPS is verified, with Docker's per-registry trust from
/etc/docker/certs.d/<host:port>/ (*.crt are CAs, client.cert + client.key a
client certificate).  Plain HTTP only for loopback registries or ones named
insecure; unverified HTTPS only for ones named insecure.  5xx answers and
connection errors are retried with backoff; an interrupted blob resumes
with Range, and every blob is hashed while it streams.  Knows nothing of
the registry API or auth (registry.py and auth.py do).
"""
import hashlib
import ipaddress
import os
import time
import warnings

import requests

from bocker.image import digest as _digest
from bocker.image.errors import DigestMismatch, RegistryError

CERTS_DIR = "/etc/docker/certs.d"
TIMEOUT = (10, 60)          # connect, read (seconds)
RETRIES = 4                 # attempts on 5xx and connection errors
BACKOFF = 0.5               # seconds, doubled each retry
CHUNK = 1 << 16


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


def why(e):
    """A short reason for a connection error, for one line of output."""
    text = str(e)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "Connection refused", "timed out",
                   "Name or service not known"):
        if marker in text:
            return marker.lower().replace("_", " ")
    return text.splitlines()[0][:200] if text else type(e).__name__


def _urllib3_errors():
    import urllib3.exceptions
    return urllib3.exceptions.HTTPError


def _bundle(cas, directory):
    """One CA file for requests (which takes one): the directory's CAs concatenated."""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                        f"bocker-ca-{hashlib.sha256(directory.encode()).hexdigest()[:12]}.pem")
    with open(path, "w") as out:
        for ca in cas:
            with open(ca) as f:
                out.write(f.read() + "\n")
    return path


class Transport:
    """An HTTP session to one registry host[:port]; see the module docstring."""

    def __init__(self, host, *, insecure=False, certs_dir=None, timeout=TIMEOUT,
                 retries=RETRIES, backoff=BACKOFF):
        self.host = host
        self.explicitly_insecure = insecure
        self.insecure = insecure or is_loopback(host)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "bocker/0.1"
        self.verify = True
        self._tls(certs_dir or os.environ.get("BOCKER_CERTS_DIR") or CERTS_DIR)
        self._base = None

    def _tls(self, certs_dir):
        """Docker's per-registry trust from certs.d/<host:port>/."""
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

    def base(self):
        """https://host, or http://host for a registry allowed plain HTTP.

        HTTPS is verified.  A registry named insecure may also fall back to
        unverified HTTPS (as Docker's --insecure-registry does); one on
        loopback or named insecure may fall back to plain HTTP.  The first
        scheme whose /v2/ answers 200 or 401 is kept for the session.
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
                        probe = self.send("GET", f"{scheme}://{self.host}/v2/", attempts=1,
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
                raise RegistryError(f"cannot reach registry {self.host}: {why(last)}")
        return self._base

    def send(self, method, url, attempts=None, **kw):
        """One request with retries on 5xx and connection errors.

        Connection errors of the last attempt propagate (requests'
        exceptions); a 5xx of the last attempt is returned.
        """
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

    def download(self, open_blob, digest, dest, size=None, progress=None):
        """Stream a blob into the file dest, hashing as it comes; returns its size.

        open_blob(headers) opens the blob's response (200, or 206 to a
        Range).  An interrupted transfer resumes with Range (or restarts
        when the server ignores it).  On a digest or size mismatch dest is
        removed and DigestMismatch raised.  progress(n) is called per chunk,
        progress(None) on a restart.
        """
        h = _digest.hasher(digest)
        done = 0
        with open(dest, "wb") as out:
            for attempt in range(self.retries):
                headers = {"Range": f"bytes={done}-"} if done else None
                try:
                    response = open_blob(headers)
                    with response:
                        if done and response.status_code != 206:
                            out.seek(0)
                            out.truncate()
                            h, done = _digest.hasher(digest), 0
                            if progress:
                                progress(None)  # restart
                        for chunk in response.raw.stream(CHUNK, decode_content=False):
                            out.write(chunk)
                            h.update(chunk)
                            done += len(chunk)
                            if size is not None and done > size:
                                break  # more than promised: a mismatch, stop reading
                            if progress:
                                progress(len(chunk))
                    break
                except (requests.ConnectionError, requests.Timeout,
                        requests.exceptions.ChunkedEncodingError,
                        _urllib3_errors()) as e:
                    if attempt + 1 == self.retries:
                        os.unlink(dest)
                        raise RegistryError(f"download of {digest}: {why(e)}") from None
                    time.sleep(self.backoff * (2 ** attempt))
                except BaseException:
                    os.unlink(dest)
                    raise
        if "sha256:" + h.hexdigest() != digest or (size is not None and done != size):
            os.unlink(dest)
            raise DigestMismatch(digest)
        return done
