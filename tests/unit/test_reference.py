"""Docker reference normalisation (bocker.reference): pure, no root."""
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bocker.errors import InvalidArgument
from bocker.image import reference

HEX = "0123456789abcdef"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, want", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("user/app:1.0", "docker.io/user/app:1.0"),
    ("registry:5000/x/y", "registry:5000/x/y:latest"),
    ("registry:5000/x/y:v2", "registry:5000/x/y:v2"),
    ("localhost/x", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
    ("ghcr.io/o/r/deep/path:t", "ghcr.io/o/r/deep/path:t"),
    ("127.0.0.1:5000/x:t", "127.0.0.1:5000/x:t"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
    (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}"),
    (f"reg.io:443/a@{DIGEST}", f"reg.io:443/a@{DIGEST}"),
])
def test_normalise(text, want):
    assert str(reference.parse(text)) == want


@pytest.mark.parametrize("text, familiar", [
    ("busybox", "busybox:latest"),
    ("docker.io/library/busybox:1", "busybox:1"),
    ("user/app", "user/app:latest"),
    ("registry:5000/x/y", "registry:5000/x/y:latest"),
    (f"busybox@{DIGEST}", f"busybox@{DIGEST}"),
])
def test_familiar(text, familiar):
    assert reference.parse(text).familiar() == familiar


def test_parts_and_api_host():
    ref = reference.parse("busybox")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "docker.io", "library/busybox", "latest", None)
    assert ref.api_host == "registry-1.docker.io"
    assert reference.parse("registry:5000/x").api_host == "registry:5000"
    assert reference.parse(f"x@{DIGEST}").reference == DIGEST


def test_two_argument_form():
    assert str(reference.parse("busybox", "musl")) == "docker.io/library/busybox:musl"
    with pytest.raises(InvalidArgument):
        reference.parse("busybox:1", "2")
    with pytest.raises(InvalidArgument):
        reference.parse(f"busybox@{DIGEST}", "2")


@pytest.mark.parametrize("bad", [
    "", "Busybox", "busybox:", ":tag", "a//b", "a/", "/a", "busybox@sha256:short",
    "busybox@sha256:" + "g" * 64, "bus box", "x:-tag", "-x", "x:" + "t" * 129,
    "reg:port/x", "a__-b",
])
def test_rejects(bad):
    with pytest.raises(InvalidArgument):
        reference.parse(bad)


components = st.from_regex(r"\A[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}\Z")
tags = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
hosts = st.one_of(
    st.just(None), st.just("localhost"),
    st.from_regex(r"\A[a-z0-9]{1,8}\.[a-z]{2,5}\Z"),
    st.builds(lambda h, p: f"{h}:{p}", st.sampled_from(["registry", "127.0.0.1", "r.io"]),
              st.integers(1, 65535)))


@given(hosts, st.lists(components, min_size=1, max_size=4), st.one_of(st.none(), tags),
       st.one_of(st.none(), st.text(HEX, min_size=64, max_size=64)))
def test_roundtrip(host, path, tag, hexdigest):
    """Whatever is valid parses, and the canonical form parses to itself."""
    # Docker's rule: a first component with a '.' is a registry host.
    assume(host or len(path) == 1 or "." not in path[0])
    text = "/".join(([host] if host else []) + path)
    if tag:
        text += f":{tag}"
    if hexdigest:
        text += f"@sha256:{hexdigest}"
    ref = reference.parse(text)
    assert reference.parse(str(ref)) == ref
    assert reference.parse(ref.familiar()) == ref
    assert ref.tag == (tag or (None if hexdigest else "latest"))
    assert ref.digest == (f"sha256:{hexdigest}" if hexdigest else None)
    if host:
        assert ref.registry == host
        assert ref.repository == "/".join(path)
    else:
        assert ref.registry == "docker.io"
        assert ref.repository.endswith("/".join(path))


@given(st.text(max_size=40))
def test_never_crashes(text):
    """Any text either parses or raises InvalidArgument, nothing else."""
    try:
        ref = reference.parse(text)
    except InvalidArgument:
        return
    assert reference.parse(str(ref)) == ref
