"""-v, --mount, --volumes-from and image Volumes parsing (no root), and
volume ls's filters and format; hypothesis where the input varies."""
import csv
import io
import json
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bocker.errors import InvalidArgument
from bocker.volume import listing, names, parse, plan

NAME = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,20}", fullmatch=True)
SEGMENT = st.from_regex(r"[a-z0-9_.-]{1,8}", fullmatch=True).filter(lambda s: s not in (".", ".."))
PATH = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p))


def refused_or(fn, text):
    try:
        return fn(text)
    except InvalidArgument:
        return None


@given(NAME, PATH, st.sampled_from(["", ":ro", ":rw", ":nocopy", ":ro,nocopy", ":z"]))
def test_a_name_is_a_named_volume(name, target, mode):
    m = parse.parse_volume(f"{name}:{target}{mode}")
    assert (m.kind, m.source, m.target) == ("volume", name, target)
    assert m.readonly == ("ro" in mode) and m.nocopy == ("nocopy" in mode)


@given(PATH, PATH, st.sampled_from(["", ":ro", ":rw"]))
def test_an_absolute_source_is_a_bind(host, target, mode):
    m = parse.parse_volume(f"{host}:{target}{mode}")
    assert (m.kind, m.source, m.target, m.readonly) == ("bind", host, target, mode == ":ro")


@given(PATH)
def test_a_path_alone_is_an_anonymous_volume(target):
    m = parse.parse_volume(target)
    assert (m.kind, m.source, m.target) == ("volume", "", target)


@pytest.mark.parametrize("spec", ["pg/data:/x", "./data:/x", "../d:/x", "a:/x", "-x:/y",
                                  "é:/x", "data:rel", "data:/", "/h:/c:rw,ro", "/h:/c:bogus",
                                  "/h:/c:shared", ":/x", "/a:", "/a:/b:ro:x", ""])
def test_what_is_neither_a_name_nor_a_path_is_refused(spec):
    with pytest.raises(InvalidArgument) as e:
        parse.parse_volume(spec)
    assert "\n" not in str(e.value)


def test_a_relative_host_path_says_to_use_an_absolute_one():
    with pytest.raises(InvalidArgument, match="use an absolute path"):
        parse.parse_volume("pg/data:/var/lib/postgresql/data")


@given(st.text(max_size=40))
@example("a:/b/../..")
@example("x" * 200 + ":/d")
def test_any_volume_text_parses_or_is_refused_and_a_name_is_never_a_path(text):
    m = refused_or(parse.parse_volume, text)
    if m is None:
        return
    assert m.target.startswith("/") and m.target != "/" and "/.." not in m.target
    if m.kind == "volume" and m.source:
        assert names.is_name(m.source) and "/" not in m.source and ".." != m.source


def _csv(fields):
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


@given(st.sampled_from(["volume", "bind", "tmpfs"]), NAME, PATH, PATH,
       st.sampled_from(["target", "destination", "dst"]), st.booleans())
def test_a_mount_parses_as_docker_reads_it(kind, name, host, target, key, ro):
    fields = [f"type={kind}", f"{key}={target}"]
    if kind == "volume":
        fields.append(f"source={name}")
    elif kind == "bind":
        fields.append(f"src={host}")
    else:
        fields += ["tmpfs-size=64m", "tmpfs-mode=1700"]
    if ro:
        fields.append("readonly")
    m = parse.parse_mount(_csv(fields))
    assert (m.kind, m.target, m.readonly) == (kind, target, ro)
    assert m.source == {"volume": name, "bind": host, "tmpfs": None}[kind]
    if kind == "tmpfs":
        assert m.tmpfs_data() == "mode=1700,size=67108864"


def test_mount_details():
    assert parse.parse_mount("type=volume,dst=/d").source == ""  # anonymous
    assert parse.parse_mount("target=/d,source=vv,ro=false").readonly is False
    assert parse.parse_mount("type=volume,src=vv,dst=/d,volume-nocopy").nocopy
    m = parse.parse_mount('type=bind,"source=/a,b",target=/d')  # csv quoting: a comma in it
    assert m.source == "/a,b"
    assert parse.parse_mount("type=tmpfs,dst=/t").tmpfs_data() == "mode=1777"
    assert parse.parse_mount("type=bind,src=/a,dst=/d,bind-propagation=rprivate")


@pytest.mark.parametrize("spec", ["type=nfs,dst=/d", "type=volume", "type=volume,dst=rel",
                                  "type=bind,dst=/d", "type=bind,src=rel,dst=/d",
                                  "type=volume,src=a/b,dst=/d", "type=tmpfs,src=x,dst=/d",
                                  "type=tmpfs,dst=/d,tmpfs-mode=99", "dst=/d,ro=maybe",
                                  "dst=/d,bogus=1", "type=bind,src=/a,dst=/d,"
                                  "bind-propagation=shared", "dst=/d,volume-driver=nfs",
                                  "dst=/d,volume-opt=nokey", '"dst=/d', "", "type=volume,dst=/"])
def test_a_bad_mount_is_refused_in_one_line(spec):
    with pytest.raises(InvalidArgument) as e:
        parse.parse_mount(spec)
    assert "\n" not in str(e.value)


@given(st.lists(st.one_of(st.sampled_from(["type=", "volume", "bind", "tmpfs", "src=", "dst=",
                                           "/x", ",", "ro", "=", '"', "tmpfs-size=", "1m",
                                           "tmpfs-mode=", "777", "volume-opt=", "a=b"]),
                          st.text(max_size=3)), max_size=10).map("".join))
def test_any_mount_text_parses_or_is_refused(text):
    m = refused_or(parse.parse_mount, text)
    if m is not None:
        assert m.kind in ("volume", "bind", "tmpfs") and m.target.startswith("/")
        if m.kind == "bind":
            assert m.source.startswith("/")
        if m.kind == "volume" and m.source:
            assert names.is_name(m.source)


def test_image_volumes_are_validated():
    assert parse.image_volumes({"Volumes": {"/data": {}, "/a/../b": {}}}) == ["/b", "/data"]
    assert parse.image_volumes({}) == [] and parse.image_volumes({"Volumes": None}) == []
    for bad in ({"Volumes": ["/x"]}, {"Volumes": {"rel": {}}}, {"Volumes": {"/": {}}},
                {"Volumes": {f"/v{i}": {} for i in range(parse.MAX_IMAGE_VOLUMES + 1)}},
                {"Volumes": {"/a\0b": {}}}):
        with pytest.raises(InvalidArgument):
            parse.image_volumes(bad)


@pytest.mark.parametrize("text,want", [("c", ("c", None)), ("c:ro", ("c", "ro")),
                                       ("c:rw", ("c", "rw"))])
def test_volumes_from(text, want):
    assert plan.parse_volumes_from(text) == want


@pytest.mark.parametrize("text", ["", ":ro", "c:rx"])
def test_bad_volumes_from(text):
    with pytest.raises(InvalidArgument):
        plan.parse_volumes_from(text)


@given(st.text(max_size=140))
def test_names_are_docker_s_and_anonymous_ones_are_64_hex(text):
    assert names.is_name(text) == bool(re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,127}", text,
                                                    re.ASCII))
    assert re.fullmatch(r"[0-9a-f]{64}", names.anonymous())


def test_filters_and_format_through_the_shared_code(capsys):
    from bocker.cli import filters, gotemplate, output

    vol = {"Name": "pgdata", "Driver": "local", "Labels": {"app": "db", "tier": "1"},
           "Mountpoint": "/r/volumes/pgdata/_data", "Scope": "local"}
    used = filters.volume_names_in_use([{"Mounts": [{"Type": "volume", "Name": "pgdata"}]}])

    def f(values):
        return filters.volumes(filters.parse(values, filters.VOLUME_KEYS), used)(vol)
    assert f(["name=pg", "label=app=db", "dangling=false", "driver=local"])
    assert not f(["label=app=web"])
    assert not f(["dangling=true"])
    assert f(["name=zz", "name=pgd"])  # either value of a key
    assert f(["name=^pg.*a$"])  # Docker's name= is a regular expression
    for bad in (["bogus=1"], ["name"], ["label!=app"]):
        with pytest.raises(filters.FilterError):
            filters.parse(bad, filters.VOLUME_KEYS)
    with pytest.raises(filters.FilterError):
        f(["dangling=maybe"])
    row = listing.VolumeRow(vol)
    assert gotemplate.render('{{.Name}}\t{{.Labels}}\t{{.Label "app"}}', row) == \
        "pgdata\tapp=db,tier=1\tdb"
    assert json.loads(gotemplate.render("{{json .}}", row)) == {
        "Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": "app=db,tier=1",
        "Links": "N/A", "Mountpoint": "/r/volumes/pgdata/_data", "Name": "pgdata",
        "Scope": "local", "Size": "N/A", "Status": "N/A"}
    fmt, table_ = output.listing_format("table {{.Driver}}\\t{{.Name}}")
    output.print_template(fmt, [row], listing.HEADERS, table_)
    assert capsys.readouterr().out == "DRIVER    VOLUME NAME\nlocal     pgdata\n"
    with pytest.raises(gotemplate.TemplateError):
        gotemplate.render("{{.Nope}}", row)


def test_prune_filters_keep_what_they_do_not_name():
    from bocker.cli import filters

    def keep(values, labels):
        return listing.prune_keep(filters.parse(values, listing.PRUNE_KEYS))(
            {"Name": "v", "Labels": labels})
    assert not keep([], {})
    assert not keep(["label=app=db"], {"app": "db"}) and keep(["label=app=db"], {"app": "x"})
    assert keep(["label!=app"], {"app": "db"}) and not keep(["label!=app"], {})
    assert keep(["label!=app=db"], {"app": "db"}) and not keep(["label!=app=db"], {"app": "x"})
    with pytest.raises(filters.FilterError):
        filters.parse(["name=x"], listing.PRUNE_KEYS)
