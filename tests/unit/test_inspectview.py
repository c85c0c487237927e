"""inspect's Docker shapes from bocker's records (no root), and the
--since/--until time forms."""
import calendar
import time

import pytest
from hypothesis import given, strategies as st

from bocker.cli import timeparse
from bocker.runtime import inspectview, recordshape, spec


def _record(**req_fields):
    req = spec.RunRequest(image="busybox", command=["sleep", "5"], name="web", **req_fields)
    record = recordshape.new_record("ps_0123456789ab", req, "img_0123456789ab",
                                    {"Entrypoint": ["/entry"], "Cmd": ["x"]})
    return recordshape.with_view(recordshape.stored(record))


def test_container_shape():
    record = _record()
    record["State"].update(Status="running", Running=True, Pid=99,
                           StartedAt="2026-01-02T03:04:05.123456789Z")
    record["NetworkSettings"] = {
        "IPAddress": "10.0.0.5", "IPPrefixLen": 24, "MacAddress": "02:42:0a:00:00:05",
        "Gateway": "10.0.0.1", "Bridge": "bocker0", "HostVeth": "vethX", "Guarded": True,
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}
    image = {"id": "img_0123456789ab", "config": {"Entrypoint": ["/entry"],
                                                  "Labels": {"from": "image"}}}
    out = inspectview.container(record, image)
    assert out["Id"] == "ps_0123456789ab" and out["Name"] == "/web"
    assert out["Created"].endswith("Z") and len(out["Created"]) == len("2026-01-02T03:04:05.") + 10
    assert out["Path"] == "/entry" and out["Args"] == ["sleep", "5"]
    assert out["Config"]["Entrypoint"] == ["/entry"] and out["Config"]["Cmd"] == ["sleep", "5"]
    assert out["Config"]["Labels"] == {}  # the record's own (merged at create), not the image's now
    assert out["Config"]["Image"] == "busybox" and out["Config"]["StopSignal"] == "SIGTERM"
    assert out["Config"]["Tty"] is False and out["Config"]["OpenStdin"] is False
    st = out["State"]
    assert st == {"Status": "running", "Running": True, "Paused": False, "Restarting": False,
                  "OOMKilled": False, "Dead": False, "Pid": 99, "ExitCode": 0, "Error": "",
                  "StartedAt": "2026-01-02T03:04:05.123456789Z",
                  "FinishedAt": "0001-01-01T00:00:00Z"}
    net = out["NetworkSettings"]
    assert net["IPAddress"] == "10.0.0.5" and net["Gateway"] == "10.0.0.1"
    assert net["Networks"] == {"bridge": {"IPAddress": "10.0.0.5", "Gateway": "10.0.0.1",
                                          "MacAddress": "02:42:0a:00:00:05",
                                          "IPPrefixLen": 24, "NetworkID": "bridge"}}
    assert net["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert net["HostVeth"] == "vethX" and net["Guarded"] is True  # bocker's own, kept
    assert out["Mounts"] == [] and out["RestartCount"] == 0
    assert out["HostConfig"]["NetworkMode"] == "bridge"
    assert "Confinement" in out and out["Spec"]["image"] == "busybox"
    assert out["ImageName"] == "busybox"


def test_container_shape_without_its_image_and_after_exit():
    record = _record(entrypoint=["/e"])
    record["State"].update(Status="exited", ExitCode=3, FinishedAt="2026-01-02T03:04:05.1Z")
    record["NetworkSettings"] = {"IPAddress": "10.0.0.5", "Gateway": "10.0.0.1"}
    record["Config"]["Labels"] = {"run": "label"}
    record["Config"]["ExposedPorts"] = {"80/tcp": {}}
    out = inspectview.container(record, None)
    assert out["Config"]["Entrypoint"] == ["/e"] and out["Config"]["Cmd"] == ["sleep", "5"]
    assert out["Config"]["Labels"] == {"run": "label"}
    assert out["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert out["State"]["Status"] == "exited" and out["State"]["ExitCode"] == 3
    assert out["NetworkSettings"]["IPAddress"] == ""  # given back at the exit
    assert out["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
    record["Spec"]["network"] = "host"
    record["HostConfig"]["NetworkMode"] = "host"
    assert list(inspectview.container(record)["NetworkSettings"]["Networks"]) == ["host"]


def test_container_mounts_pass_through():
    record = _record()
    record["Mounts"] = [{"Type": "volume", "Name": "pg", "Source": "/v", "Destination": "/d",
                         "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}]
    assert inspectview.container(record)["Mounts"] == record["Mounts"]


def test_image_shape():
    record = {"id": "img_0123456789ab", "source": "docker.io/library/busybox@sha256:ab",
              "names": ["busybox:latest"], "created": 1700000000.5, "size": 4096,
              "config": {"Cmd": ["sh"], "History": [{"created_by": "ADD"}]},
              "layers": ["sha256:l1", "sha256:l2"], "os": "linux", "architecture": "arm64",
              "config_digest": "sha256:cfg",
              "repo_digests": ["docker.io/library/busybox@sha256:ab"]}
    out = inspectview.image(record)
    assert out["Id"] == "img_0123456789ab" and out["RepoTags"] == ["busybox:latest"]
    assert out["RepoDigests"] == ["docker.io/library/busybox@sha256:ab"]
    assert out["Created"] == "2023-11-14T22:13:20.500000000Z"
    assert out["Os"] == "linux" and out["Architecture"] == "arm64" and out["Size"] == 4096
    assert out["RootFS"] == {"Type": "layers", "Layers": ["sha256:l1", "sha256:l2"]}
    assert out["Config"]["Cmd"] == ["sh"] and out["Config"]["Labels"] is None
    assert out["History"] == [{"created_by": "ADD"}] and out["ConfigDigest"] == "sha256:cfg"
    # a p8952-style image (bocker init of a directory): no registry fields
    plain = inspectview.image({"id": "img_0123456789ac", "source": "/tmp/dir", "names": [],
                               "created": 1.0, "config": {}})
    assert plain["RepoTags"] == [] and plain["RepoDigests"] == [] and plain["Os"] == "linux"
    assert plain["RootFS"] == {"Type": "layers", "Layers": []} and "History" not in plain


@given(st.floats(min_value=1, max_value=4e9, allow_nan=False))
def test_rfc3339_is_dockers_form(ts):
    text = inspectview.rfc3339(ts)
    base, frac = text[:-1].split(".")
    assert text.endswith("Z") and len(frac) == 9
    assert abs(calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1e9
               - ts) < 1e-5 * max(1, ts / 1e9)


NOW = 1_800_000_000.0


@pytest.mark.parametrize("text,expected", [
    ("1700000000", 1700000000.0),
    ("1700000000.25", 1700000000.25),
    ("10m", NOW - 600),
    ("1h30m", NOW - 5400),
    ("45s", NOW - 45),
    ("1.5h", NOW - 5400),
    ("500ms", NOW - 0.5),
    ("2026-01-02T03:04:05Z", calendar.timegm((2026, 1, 2, 3, 4, 5))),
    ("2026-01-02T03:04:05.123456789Z", calendar.timegm((2026, 1, 2, 3, 4, 5)) + 0.123456),
    ("2026-01-02T03:04:05+01:00", calendar.timegm((2026, 1, 2, 2, 4, 5))),
])
def test_time_forms(text, expected):
    assert timeparse.parse(text, now=NOW) == pytest.approx(expected, abs=1e-6)


def test_local_times_and_dates():
    assert timeparse.parse("2026-01-02") == time.mktime((2026, 1, 2, 0, 0, 0, 0, 0, -1))


@pytest.mark.parametrize("text", ["yesterday", "10x", "", "2026-13-01", "1h-5m", "m"])
def test_bad_times(text):
    with pytest.raises(timeparse.TimeError, match="--until") as e:
        timeparse.parse(text, "--until")
    assert e.value.exit_code == 125


@given(st.text(max_size=40))
def test_times_never_traceback(text):
    try:
        assert isinstance(timeparse.parse(text, now=NOW), float)
    except timeparse.TimeError:
        pass
