"""Pure parts of bocker.registry: challenges, platforms, credentials."""
import json
import os

import pytest

from bocker.errors import InvalidArgument, NotFound
from bocker.image import auth, credentials, digest, platforms, registry, transport


def test_parse_challenge():
    scheme, params = auth.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:library/busybox:pull"}
    assert auth.parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


@pytest.mark.parametrize("host, yes", [
    ("127.0.0.1:5000", True), ("127.3.4.5", True), ("localhost:1", True), ("[::1]:5000", True),
    ("10.0.0.1:5000", False), ("registry:5000", False), ("docker.io", False),
])
def test_is_loopback(host, yes):
    assert transport.is_loopback(host) is yes


def _d(arch, variant=None, os_="linux", attest=False):
    plat = {"os": os_, "architecture": arch, **({"variant": variant} if variant else {})}
    desc = {"digest": f"sha256:{arch}{variant or ''}{os_}{attest}", "platform": plat}
    if attest:
        desc["annotations"] = {"vnd.docker.reference.type": "attestation-manifest"}
    return desc


INDEX = {"manifests": [_d("amd64", attest=True), _d("unknown", os_="unknown"),
                       _d("arm", "v6"), _d("arm", "v7"), _d("arm64", "v8"), _d("amd64"),
                       _d("amd64", os_="windows")]}


@pytest.mark.parametrize("want, pick", [
    (("linux", "amd64", None), _d("amd64")),
    (("linux", "arm64", None), _d("arm64", "v8")),
    (("linux", "arm64", "v8"), _d("arm64", "v8")),
    (("linux", "arm", "v7"), _d("arm", "v7")),
    (("windows", "amd64", None), _d("amd64", os_="windows")),
])
def test_select_platform(want, pick):
    assert platforms.select_platform(INDEX, want) == pick


def test_select_platform_skips_attestations():
    index = {"manifests": [_d("amd64", attest=True)]}
    with pytest.raises(NotFound, match="no image for platform linux/amd64"):
        platforms.select_platform(index, ("linux", "amd64", None))
    with pytest.raises(NotFound):
        platforms.select_platform(INDEX, ("linux", "s390x", None))


def test_parse_platform():
    assert platforms.parse_platform("linux/arm64/v8") == ("linux", "arm64", "v8")
    assert platforms.parse_platform("linux/amd64") == ("linux", "amd64", None)
    for bad in ("linux", "linux/", "a/b/c/d", ""):
        with pytest.raises(InvalidArgument):
            platforms.parse_platform(bad)
    assert platforms.host_platform()[0] == "linux"


def test_credentials_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert credentials.load_credentials("r:5000") is None
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "x", "auths": {}}))
    credentials.save_credentials("r:5000", "u", "p:w")
    credentials.save_credentials("docker.io", "hub", "pw")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["credsStore"] == "x"  # other keys kept
    assert "https://index.docker.io/v1/" in config["auths"]
    assert credentials.load_credentials("r:5000") == ("u", "p:w")
    assert credentials.load_credentials("docker.io") == ("hub", "pw")
    assert credentials.load_credentials("other") is None
    assert oct(os.stat(tmp_path / "config.json").st_mode & 0o777) == "0o600"


def test_docker_written_keys(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"auths": {"https://r.io": {"auth": "dTpw"}}}))
    assert credentials.load_credentials("r.io", str(path)) == ("u", "p")


def test_verify_digest():
    data = b"hello"
    digest.verify(
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", data)
    with pytest.raises(registry.DigestMismatch, match="digest mismatch for sha256:00"):
        digest.verify("sha256:" + "00" * 32, data)
    with pytest.raises(digest.BadDigest, match="only sha256"):
        digest.verify("md5:abc", data)
    with pytest.raises(digest.BadDigest, match="only sha256"):
        digest.verify("sha512:" + "00" * 64, data)


def test_credential_helper(tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-bkpfake"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread server\n[ "$1" = get ] && [ "$server" = r.io ] && '
                      'echo \'{"ServerURL":"r.io","Username":"hu","Secret":"hs"}\' && exit 0\n'
                      'echo "credentials not found" ; exit 1\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {"r.io": "bkpfake"},
                                  "auths": {"other.io": {"auth": "dTpw"}}}))
    assert credentials.load_credentials("r.io", str(config)) == ("hu", "hs")
    assert credentials.load_credentials("other.io", str(config)) == ("u", "p")
    config.write_text(json.dumps({"credsStore": "bkpfake"}))
    assert credentials.load_credentials("r.io", str(config)) == ("hu", "hs")
    assert credentials.load_credentials("nope.io", str(config)) is None
    config.write_text(json.dumps({"credsStore": "missing-helper-bkp"}))
    assert credentials.load_credentials("r.io", str(config)) is None
