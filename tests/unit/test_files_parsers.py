"""The parsers behind cp, history, tag, run --pull and the container path
mapping: pure functions, no root."""
import calendar
import posixpath
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.errors import BockerError, InvalidArgument
from bocker.image import autopull, history, tags
from bocker.runtime import cp

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@pytest.mark.parametrize("arg, want", [
    ("c:/etc", ("c", "/etc")), ("c:", ("c", "")), ("-", (None, "-")),
    ("./c:/x", (None, "./c:/x")), ("/abs:x", (None, "/abs:x")), ("dir/c:x", (None, "dir/c:x")),
    ("plain", (None, "plain")), (":x", (None, ":x")),
])
def test_split_arg(arg, want):
    assert cp.split_arg(arg) == want


def test_check_args_directions():
    assert cp.check_args("c:/a", "b") == ("out", "c", "/a", "b")
    assert cp.check_args("-", "c:/d") == ("in", "c", "/d", "-")
    assert cp.check_args("a", "c:") == ("in", "c", "/", "a")
    for src, dest in (("a", "b"), ("c:/a", "d:/b")):
        with pytest.raises(InvalidArgument):
            cp.check_args(src, dest)


@given(st.text(max_size=40))
def test_split_arg_never_loses_text(arg):
    container, path = cp.split_arg(arg)
    assert (f"{container}:{path}" if container else path) == arg
    assert container is None or ("/" not in container and container)


class _Paths:
    def container(self, cid):
        return f"/root/containers/{cid}"


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "mnt", "vol", "x"]), max_size=8))
def test_mapped_root_stays_in_a_known_tree(parts):
    """Whatever the path, it maps to the rootfs or a mount's source, with a
    normalized absolute rest that has no '..' left (openat2 resolves it)."""
    record = {"Id": "ps_000000000000", "Spec": {"volumes": ["/host/v:/mnt/vol:ro", "/h2:/x"]}}
    root, rest, readonly = cp.mapped_root(_Paths(), record, "/".join(parts))
    assert root in ("/root/containers/ps_000000000000/rootfs", "/host/v", "/h2")
    assert rest.startswith("/") and not rest.startswith("//") and ".." not in rest.split("/")
    assert posixpath.normpath(rest) == rest
    assert readonly == (root == "/host/v")


def test_mounts_from_the_record_win_over_the_spec_and_ignore_junk():
    record = {"Id": "ps_000000000000", "Spec": {"volumes": ["/s:/data"]},
              "Mounts": [{"Type": "volume", "Source": "/vols/v/_data", "Destination": "/data",
                          "RW": False}, {"Type": "tmpfs", "Destination": "/t"}, "junk",
                         {"Type": "bind", "Source": 5, "Destination": "/y"}]}
    assert cp.mapped_root(_Paths(), record, "/data/f") == ("/vols/v/_data", "/f", True)
    assert cp.mapped_root(_Paths(), record, "/datax")[0].endswith("/rootfs")
    assert cp.mapped_root(_Paths(), record, "/t/x")[0].endswith("/rootfs")


@given(json_values)
def test_history_from_any_config_is_bounded(config):
    got = history.from_config(config if isinstance(config, dict) else {"history": config})
    assert isinstance(got, list) and len(got) <= history.MAX_ENTRIES
    for step in got:
        assert set(step) <= {"created", "created_by", "author", "comment", "empty_layer"}
        assert all(isinstance(v, str) and len(v) <= 8192 for k, v in step.items()
                   if k != "empty_layer")


def test_history_bounds_and_rows():
    config = {"history": [{"created_by": "x" * 100000, "empty_layer": True}] * 5000}
    got = history.from_config(config)
    assert len(got) == history.MAX_ENTRIES and len(got[0]["created_by"]) == 8192
    rows = history.rows({"id": "img_0123456789ab", "history": [
        {"created": "2024-01-02T03:04:05Z", "created_by": "first"}, {"created_by": "second"}]})
    assert [(r["ID"], r["CreatedBy"]) for r in rows] == [
        ("img_0123456789ab", "second"), ("<missing>", "first")]
    assert rows[1]["Created"] == calendar.timegm((2024, 1, 2, 3, 4, 5, 0, 0, 0))
    assert history.rows({"id": "img_0123456789ab", "source": "/src", "created": 5.0}) == [
        {"ID": "img_0123456789ab", "Created": 5.0, "CreatedBy": "bocker: /src", "Comment": "",
         "Size": None, "EmptyLayer": False}]
    steps = {"id": "img_0123456789ab", "history": [
        {"created_by": "ADD"}, {"created_by": "ENV", "empty_layer": True}, {"created_by": "RUN"}]}
    assert [r["Size"] for r in history.rows(steps, [10, 20])] == [20, 0, 10]
    assert [r["Size"] for r in history.rows(steps, [10])] == [None] * 3  # do not pair up


@given(st.integers(min_value=0, max_value=4102444800), st.integers(0, 999999999),
       st.integers(-23 * 60, 23 * 60))
def test_parse_rfc3339_round_trip(secs, nanos, offset_min):
    sign = "+" if offset_min >= 0 else "-"
    local = time.gmtime(secs + offset_min * 60)
    text = (time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{nanos:09d}"
            + f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}")
    assert history.parse_rfc3339(text) == pytest.approx(secs + nanos / 1e9, abs=1e-6)
    assert history.parse_rfc3339(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))) == secs


@given(st.text(max_size=40))
def test_parse_rfc3339_never_raises(text):
    got = history.parse_rfc3339(text)
    assert got is None or isinstance(got, (int, float))


@pytest.mark.parametrize("text, want", [
    ("busybox", "busybox:latest"), ("a/b:v1", "a/b:v1"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
])
def test_check_name(text, want):
    assert tags.check_name(text) == want


@given(st.text(max_size=60))
def test_check_name_accepts_only_the_grammar(text):
    try:
        name = tags.check_name(text)
    except BockerError:
        return
    from bocker.image import names

    repo, tag = name.rsplit(":", 1)
    assert names.is_name(repo) and names.is_tag(tag) and "@" not in name
    assert tags.check_name(name) == name  # normalized once is normalized


def test_pull_policies():
    assert autopull.check_policy(None) == "missing"
    for word in autopull.POLICIES:
        assert autopull.check_policy(word) == word
    with pytest.raises(InvalidArgument):
        autopull.check_policy("sometimes")


def test_a_local_image_of_another_platform_is_missing():
    rec = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert autopull._matches(rec, "linux/arm64")
    assert autopull._matches(rec, "linux/arm64/v8")
    assert not autopull._matches(rec, "linux/amd64")
    assert autopull._matches({}, "linux/amd64")  # made here: says nothing, matches


def test_tag_name_of_matched_ref():
    record = {"names": ["busybox:latest", "x/y:v1"]}
    assert tags.matched_name(record, "busybox") == "busybox:latest"
    assert tags.matched_name(record, "x/y:v1") == "x/y:v1"
    assert tags.matched_name(record, "docker.io/library/busybox") == "busybox:latest"
    assert tags.matched_name(record, "img_0123") is None
