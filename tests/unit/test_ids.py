"""ID, name and reference parsing."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker import ids
from bocker.errors import Ambiguous, InvalidArgument, NoSuchImage


def test_new_id_shape():
    for prefix in ("img", "ps"):
        i = ids.new_id(prefix)
        assert ids.is_id(i, prefix) and len(i) == len(prefix) + 13


@pytest.mark.parametrize("ref,expected", [
    ("busybox", ("busybox", "latest")),
    ("busybox:1.36", ("busybox", "1.36")),
    ("localhost:5000/x/y", ("localhost:5000/x/y", "latest")),
    ("localhost:5000/x/y:v2", ("localhost:5000/x/y", "v2")),
    ("docker.io/library/busybox:latest", ("docker.io/library/busybox", "latest")),
])
def test_split_name(ref, expected):
    assert ids.split_name(ref) == expected


@pytest.mark.parametrize("bad", ["", "UPPER", "a::b", "a:", "-x", "x/", "a b"])
def test_split_name_rejects(bad):
    with pytest.raises(InvalidArgument):
        ids.split_name(bad)


names = st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True)
tags = st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}", fullmatch=True)


@given(names, tags)
def test_split_name_round_trip(name, tag):
    assert ids.split_name(f"{name}:{tag}") == (name, tag)
    assert ids.normalize_name(name) == f"{name}:latest"


def records():
    return {"img_aaaa11112222": {"web:latest"}, "img_aaab33334444": {"db:v1"},
            "img_bbbb55556666": set()}


def test_resolve_exact_name_and_prefix():
    r = records()
    assert ids.resolve("img_aaaa11112222", r, NoSuchImage) == "img_aaaa11112222"
    assert ids.resolve("web", r, NoSuchImage) == "img_aaaa11112222"
    assert ids.resolve("db:v1", r, NoSuchImage) == "img_aaab33334444"
    assert ids.resolve("bbbb", r, NoSuchImage) == "img_bbbb55556666"
    assert ids.resolve("img_b", r, NoSuchImage) == "img_bbbb55556666"


def test_resolve_ambiguous_lists_candidates():
    with pytest.raises(Ambiguous) as e:
        ids.resolve("aaa", records(), NoSuchImage)
    assert "img_aaaa11112222" in str(e.value) and "img_aaab33334444" in str(e.value)


def test_resolve_missing():
    with pytest.raises(NoSuchImage) as e:
        ids.resolve("nothere", records(), NoSuchImage)
    assert str(e.value) == "No image named 'nothere' exists"


@given(st.lists(st.from_regex(r"img_[0-9a-f]{12}", fullmatch=True), min_size=1,
                max_size=20, unique=True))
def test_every_full_id_resolves_to_itself(id_list):
    r = {i: set() for i in id_list}
    for i in id_list:
        assert ids.resolve(i, r, NoSuchImage) == i


@pytest.mark.parametrize("bad", ["busybox:latest\n", "busybox\n", "web\n"])
def test_trailing_newline_is_not_a_name(bad):
    """One grammar (bocker.image.names), matched whole: no '$' before a newline."""
    with pytest.raises(InvalidArgument):
        ids.split_name(bad)
    with pytest.raises(InvalidArgument):
        ids.check_container_name(bad)


_bits = st.sampled_from(["a", "b0", "X", "-", "_", "__", ".", ":", "5000", "/", "localhost",
                         "[::1]", "@", " "])


@given(st.lists(_bits, min_size=1, max_size=8).map("".join))
def test_ids_and_reference_agree_on_names(text):
    """ids.split_name and reference.parse share one grammar: they accept the same names."""
    from bocker.image import reference
    try:
        ids.split_name(text)
        by_ids = True
    except InvalidArgument:
        by_ids = False
    try:
        reference.parse(text)
        by_reference = True
    except InvalidArgument:
        by_reference = False
    if "@" not in text:  # a digest is the reference's alone
        assert by_ids == by_reference, text
