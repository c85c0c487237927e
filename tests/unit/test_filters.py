"""--filter for containers, images and volumes: Docker's keys, OR within a
key, AND across keys (label: all of them), one-line 125 errors."""
import pytest
from hypothesis import given, strategies as st

from bocker.cli import filters
from bocker.cli.filters import FilterError


def _container(cid, name, created, status="running", code=0, labels=None, image="img_aaaaaaaaaaaa",
               image_name="busybox", network="bridge", ports=None, exposed=None, mounts=None):
    record = {"Id": cid, "Name": name, "Created": created, "Image": image,
              "ImageName": image_name,
              "State": {"Status": status, "Running": status == "running",
                        "Restarting": status == "restarting", "ExitCode": code},
              "Config": {"Cmd": ["sh"]}, "HostConfig": {"NetworkMode": network},
              "NetworkSettings": {"Ports": ports or {}}}
    if labels is not None:
        record["Config"]["Labels"] = labels
    if exposed is not None:
        record["Config"]["ExposedPorts"] = exposed
    if mounts is not None:
        record["Mounts"] = mounts
    return record


RECORDS = [
    _container("ps_000000000001", "web", 1.0, labels={"tier": "front", "app": "shop"},
               ports={"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
               exposed={"80/tcp": {}, "443/tcp": {}},
               mounts=[{"Type": "volume", "Name": "pgdata", "Destination": "/data"}]),
    _container("ps_000000000002", "db", 2.0, status="exited", code=3,
               labels={"tier": "back"}, image="img_bbbbbbbbbbbb", image_name="postgres:16"),
    _container("ps_000000000003", "worker", 3.0, status="exited", code=0, network="host"),
    _container("ps_000000000004", "fresh", 4.0, status="created"),
    _container("ps_000000000005", "again", 5.0, status="restarting", code=1),
]


def _names(spec, resolve=None):
    wanted = filters.parse(spec, filters.CONTAINER_KEYS)
    match = filters.containers(wanted, RECORDS, resolve)
    return [r["Name"] for r in RECORDS if match(r)]


@pytest.mark.parametrize("spec,expected", [
    (["name=web"], ["web"]),
    (["name=^w"], ["web", "worker"]),
    (["name=^/db$"], ["db"]),
    (["name=e"], ["web", "worker", "fresh"]),
    (["name=["], []),  # not a regular expression: looked for as text
    (["id=ps_000000000002"], ["db"]),
    (["id=ps_00000000000"], ["web", "db", "worker", "fresh", "again"]),
    (["label=tier"], ["web", "db"]),
    (["label=tier=front"], ["web"]),
    (["label=tier", "label=app=shop"], ["web"]),  # labels: all of them
    (["label=tier=nope"], []),
    (["status=exited"], ["db", "worker"]),
    (["status=exited", "status=created"], ["db", "worker", "fresh"]),  # one key ORs
    (["status=restarting"], ["again"]),
    (["status=running"], ["web"]),
    (["status=exited", "name=db"], ["db"]),  # keys AND
    (["exited=3"], ["db"]),
    (["exited=0"], ["worker"]),
    (["exited=0", "exited=3"], ["db", "worker"]),
    (["ancestor=busybox"], ["web", "worker", "fresh", "again"]),
    (["ancestor=busybox:latest"], ["web", "worker", "fresh", "again"]),
    (["ancestor=postgres:16"], ["db"]),
    (["ancestor=img_bbbb"], ["db"]),
    (["before=worker"], ["web", "db"]),
    (["since=ps_000000000003"], ["fresh", "again"]),
    (["since=web", "before=fresh"], ["db", "worker"]),
    (["network=host"], ["worker"]),
    (["network=bridge", "network=host"], ["web", "db", "worker", "fresh", "again"]),
    (["publish=80"], ["web"]),
    (["publish=80/udp"], []),
    (["publish=70-90/tcp"], ["web"]),
    (["publish=443"], []),
    (["expose=443"], ["web"]),
    (["expose=80"], ["web"]),
    (["volume=pgdata"], ["web"]),
    (["volume=/data"], ["web"]),
    (["volume=other"], []),
    (["health=none"], ["web", "db", "worker", "fresh", "again"]),
])
def test_container_filters(spec, expected):
    assert _names(spec) == expected


def test_paused_and_dead_states():
    paused = _container("ps_000000000009", "p", 9.0)
    paused["State"].update(Paused=True)
    dead = _container("ps_00000000000a", "d", 9.0, status="dead")
    assert filters.container_state(paused) == "paused"
    assert filters.container_state(dead) == "dead"
    paused["State"].update(Paused=False, Status="paused")
    assert filters.container_state(paused) == "paused"


def test_ancestor_by_image_id_resolved():
    assert _names(["ancestor=shop"], lambda ref: "img_bbbbbbbbbbbb" if ref == "shop" else None) \
        == ["db"]


@pytest.mark.parametrize("spec,message", [
    (["bogus=1"], "invalid filter 'bogus'"),
    (["noequals"], "bad format of filter 'noequals'"),
    (["=x"], "bad format of filter"),
    (["status=sleepy"], "invalid filter 'status=sleepy'"),
    (["exited=x"], "not an exit code"),
    (["before=nosuch"], "No such container: nosuch"),
    (["publish=http"], "not a port or range"),
    (["publish=0"], "not a port or range"),
    (["expose=80/icmp"], "not a port or range"),
])
def test_bad_container_filters(spec, message):
    with pytest.raises(FilterError, match=message) as e:
        _names(spec)
    assert e.value.exit_code == 125 and "\n" not in str(e.value)


IMAGES = [
    {"id": "img_000000000001", "names": ["busybox:latest", "busybox:1.36"], "created": 1.0,
     "config": {"Labels": {"org.opencontainers.image.source": "x"}}},
    {"id": "img_000000000002", "names": [], "created": 2.0, "config": {}},
    {"id": "img_000000000003", "names": ["localhost:5000/team/app:v2"], "created": 3.0,
     "config": {}},
]


def _image_ids(spec):
    match = filters.images(filters.parse(spec, filters.IMAGE_KEYS), IMAGES)
    return [r["id"][-1] for r in IMAGES if match(r)]


@pytest.mark.parametrize("spec,expected", [
    (["dangling=true"], ["2"]),
    (["dangling=false"], ["1", "3"]),
    (["label=org.opencontainers.image.source"], ["1"]),
    (["reference=busybox"], ["1"]),
    (["reference=busy*"], ["1"]),
    (["reference=busybox:1.*"], ["1"]),
    (["reference=*/team/*"], ["3"]),
    (["reference=localhost:5000/team/app:v2"], ["3"]),
    (["reference=alpine"], []),
    (["before=img_000000000003"], ["1", "2"]),
    (["since=busybox"], ["2", "3"]),
    (["since=busybox:1.36", "dangling=false"], ["3"]),
])
def test_image_filters(spec, expected):
    assert _image_ids(spec) == expected


@pytest.mark.parametrize("spec,message", [
    (["status=x"], "invalid filter 'status'"),
    (["dangling=maybe"], "use true or false"),
    (["before=nosuch"], "No such image: nosuch"),
])
def test_bad_image_filters(spec, message):
    with pytest.raises(FilterError, match=message):
        _image_ids(spec)


def test_volume_filters_for_volume_ls():
    vols = [{"Name": "pgdata", "Labels": {"keep": "1"}, "Driver": "local"},
            {"Name": "cache", "Labels": {}}, {"Name": "pg-old"}]
    used = filters.volume_names_in_use(RECORDS)
    assert used == {"pgdata"}

    def names(spec):
        match = filters.volumes(filters.parse(spec, filters.VOLUME_KEYS), used)
        return [v["Name"] for v in vols if match(v)]
    assert names(["name=pg"]) == ["pgdata", "pg-old"]
    assert names(["dangling=true"]) == ["cache", "pg-old"]
    assert names(["dangling=false"]) == ["pgdata"]
    assert names(["label=keep=1"]) == ["pgdata"]
    assert names(["driver=local"]) == ["pgdata", "cache", "pg-old"]
    with pytest.raises(FilterError):
        names(["status=x"])


@given(st.lists(st.text(max_size=30), max_size=5))
def test_parse_never_fails_but_with_a_filter_error(values):
    try:
        parsed = filters.parse(values, filters.CONTAINER_KEYS)
        filters.containers(parsed, RECORDS)
    except FilterError as e:
        assert e.exit_code == 125
