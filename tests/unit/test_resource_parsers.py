"""The parsers and checks of Docker's further resource and device flags
(runtime/resources.py), the Limits they make and the v2 io.max lines
(no root, no kernel)."""
import pytest
from hypothesis import given, strategies as st

from bocker.errors import InvalidArgument
from bocker.kernel import cgroupextra, cgroups
from bocker.runtime import recordshape, resources, spec


def _req(**kw):
    return spec.RunRequest("busybox", ["true"], **kw)


# ------------------------------------------------------------ --device

@pytest.mark.parametrize("text, want", [
    ("/dev/loop3", ("/dev/loop3", "/dev/loop3", "rwm")),
    ("/dev/loop3:/dev/xdisk", ("/dev/loop3", "/dev/xdisk", "rwm")),
    ("/dev/loop3:/dev/xdisk:r", ("/dev/loop3", "/dev/xdisk", "r")),
    ("/dev/loop3:rw", ("/dev/loop3", "/dev/loop3", "rw")),
    ("/dev/loop3::mw", ("/dev/loop3", "/dev/loop3", "mw")),
    ("/dev/sda:/dev//a/../b", ("/dev/sda", "/dev/b", "rwm")),
])
def test_device_forms(text, want):
    assert resources.parse_device(text) == want


@pytest.mark.parametrize("text", [
    "dev/loop3", "/dev/loop3:xdisk", "/dev/a:/dev/b:rwx", "/dev/a:/dev/b:rr", "/dev/a:/etc/b",
    "/dev/a:/dev/pts/0", "/dev/a:/dev/../etc/passwd", "/dev/a:/dev", "/a:/dev/b:r:x", "",
])
def test_device_refusals(text):
    with pytest.raises(InvalidArgument):
        resources.parse_device(text)


@given(st.text(max_size=40))
def test_device_target_always_below_dev(text):
    try:
        host, target, perms = resources.parse_device(text)
    except InvalidArgument:
        return
    assert target.startswith("/dev/") and ".." not in target.split("/")
    assert not target.startswith("/dev/pts/") and set(perms) <= set("rwm")


# ------------------------------------------------------------ rules, rates, weights

@pytest.mark.parametrize("rule", ["c 7:* rwm", "b 8:0 r", "a *:* m", "c  1:3   rw"])
def test_rules_accepted(rule):
    assert resources.parse_rule(rule) == " ".join(rule.split())


@given(st.text(max_size=30))
def test_rules_are_what_the_devices_cgroup_takes(text):
    try:
        rule = resources.parse_rule(text)
    except InvalidArgument:
        return
    kind, numbers, perms = rule.split(" ")
    assert kind in "abc" and ":" in numbers and set(perms) <= set("rwm")
    assert "\n" not in rule


@pytest.mark.parametrize("text, size, want", [
    ("/dev/vda:1mb", True, ("/dev/vda", 1 << 20)), ("/dev/vda:1048576", True, ("/dev/vda", 1 << 20)),
    ("/dev/vda:100", False, ("/dev/vda", 100)), ("/dev/disk/by-id/x:5", False, ("/dev/disk/by-id/x", 5)),
])
def test_rates(text, size, want):
    assert resources.parse_rate(text, "device_read_bps", size) == want


@pytest.mark.parametrize("text, size", [
    ("/dev/vda", True), ("vda:1mb", True), ("/dev/vda:0", False), ("/dev/vda:1mb", False),
    ("/dev/vda:-1", False), ("/dev/vda:x", True), ("/dev/vda:²", False),
])
def test_rate_refusals(text, size):
    with pytest.raises(InvalidArgument):
        resources.parse_rate(text, "device_read_iops", size)


@given(st.integers(-5, 2000))
def test_weight_device_range(weight):
    text = f"/dev/vda:{weight}"
    if 10 <= weight <= 1000:
        assert resources.parse_weight_device(text) == ("/dev/vda", weight)
    else:
        with pytest.raises(InvalidArgument):
            resources.parse_weight_device(text)


# ------------------------------------------------------------ request checks

@pytest.mark.parametrize("kw", [
    dict(memory_swappiness=101), dict(memory_swappiness=-2), dict(oom_score_adj=-1001),
    dict(oom_score_adj=1001), dict(cpu_period=999), dict(cpu_period=1000001),
    dict(cpu_quota=999), dict(cpu_quota=-2), dict(cpus=1.0, cpu_quota=50000),
    dict(cpus=1.0, cpu_period=50000), dict(memory=64 << 20, memory_reservation=128 << 20),
    dict(cpu_rt_period=1000, cpu_rt_runtime=2000), dict(cpuset_mems="0;1"),
    dict(blkio_weight=5), dict(blkio_weight=1001), dict(cgroupns="shared"),
    dict(devices=["/dev/a:/etc/x"]), dict(device_cgroup_rules=["x 1:1 r"]),
    dict(devices=["/dev/null"] * 65), dict(oom_score_adj=True),
])
def test_request_refusals(kw):
    with pytest.raises(InvalidArgument):
        _req(**kw).check()


@pytest.mark.parametrize("kw", [
    dict(memory_swappiness=0), dict(memory_swappiness=-1), dict(oom_score_adj=-1000),
    dict(cpu_period=50000, cpu_quota=25000), dict(cpu_quota=-1), dict(blkio_weight=0),
    dict(memory=128 << 20, memory_reservation=64 << 20), dict(memory_reservation=64 << 20),
    dict(cpuset_mems="0-1,3"), dict(cgroupns="host"), dict(devices=["/dev/loop0:/dev/x:r"]),
    dict(device_cgroup_rules=["c 7:* rwm"]), dict(oom_kill_disable=True),
])
def test_request_accepted(kw):
    req = _req(**kw)
    req.check()
    assert spec.has_resources(req)
    stored = spec.RunRequest.from_dict(req.to_dict())
    assert all(getattr(stored, k) == v or getattr(stored, k) == list(v) for k, v in kw.items())


def test_old_record_loads_with_defaults():
    data = _req().to_dict()
    for key in spec.RESOURCE_DEFAULTS:
        data.pop(key)
    req = spec.RunRequest.from_dict(data)
    assert req.devices == [] and req.cpu_quota is None and req.oom_kill_disable is False
    assert not spec.has_resources(req)


def test_stored_and_shown_in_host_config():
    req = _req(cpu_period=50000, cpu_quota=20000, devices=["/dev/loop0:/dev/x:r"],
               device_read_bps=["/dev/vda:1mb"], cgroupns="host")
    req = spec.RunRequest.from_dict(req.to_dict())
    host = recordshape.host_config(req, {})
    assert (host["CpuPeriod"], host["CpuQuota"], host["CgroupnsMode"]) == (50000, 20000, "host")
    assert host["Devices"] == [{"PathOnHost": "/dev/loop0", "PathInContainer": "/dev/x",
                                "CgroupPermissions": "r"}]
    assert host["BlkioDeviceReadBps"] == [{"Path": "/dev/vda", "Rate": 1 << 20}]
    plain = recordshape.host_config(_req(), {})
    assert (plain["OomScoreAdj"], plain["Devices"], plain["MemorySwappiness"]) == (0, [], None)


def test_unknown_field_refused():
    with pytest.raises(TypeError):
        _req(cgroup_parnt="x")


# ------------------------------------------------------------ Limits

def test_limits_cfs():
    assert cgroups.Limits().cfs() is None
    assert cgroups.Limits(cpus=1.5).cfs() == (150000, 100000)
    assert cgroups.Limits(cpu_period=50000).cfs() == (-1, 50000)
    assert cgroups.Limits(cpu_quota=20000).cfs() == (20000, 100000)
    assert cgroups.Limits(cpu_quota=-1, cpu_period=40000).cfs() == (-1, 40000)


def test_limits_extra():
    assert not cgroups.Limits(memory=1 << 30, cpus=1.0).extra()
    assert cgroups.Limits(device_rules=[]).extra()  # a devices group with the defaults
    assert cgroups.Limits(oom_kill_disable=True).extra()
    assert cgroups.Limits(swappiness=0).extra()  # 0 is asked for, as Docker's
    with pytest.raises(TypeError):
        cgroups.Limits(bogus=1)


@given(st.dictionaries(st.sampled_from(resources.THROTTLES),
                       st.lists(st.tuples(st.integers(0, 300), st.integers(0, 3),
                                          st.integers(1, 1 << 40)), max_size=4), max_size=4))
def test_io_max_lines_one_per_device(throttles):
    lines = cgroupextra.io_max_lines(throttles)
    devices = {(a, b) for rows in throttles.values() for a, b, _ in rows}
    assert len(lines) == len(devices)
    for line in lines:
        numbers, *keys = line.split(" ")
        assert keys and all(k.split("=")[0] in resources.V2_THROTTLE.values() for k in keys)


# ------------------------------------------------------------ update

def test_update_parses_and_checks_the_new_flags():
    from bocker.cli import manage
    from bocker.runtime import update

    change = manage.parse_update(memory_reservation="64m", cpu_period=40000, cpu_quota=20000,
                                 cpuset_mems="0", blkio_weight=300)
    assert change == {"memory_reservation": 64 << 20, "cpu_period": 40000,
                      "cpu_quota": 20000, "cpuset_mems": "0", "blkio_weight": 300}
    update.check(change)
    assert manage.parse_update(memory_reservation="0") == {"memory_reservation": 0}
    for bad in ({"cpu_period": 10}, {"cpu_quota": 5}, {"cpuset_mems": "0;1"},
                {"blkio_weight": 2000}, {"cpus": 1.0, "cpu_quota": 20000}):
        with pytest.raises(InvalidArgument):
            update.check(bad)


@pytest.mark.parametrize("change, stored", [
    ({"cpu_quota": 20000}, {"cpus": 1.0}),
    ({"memory_reservation": 128 << 20}, {"memory": 64 << 20}),
    ({"memory": 32 << 20}, {"memory_reservation": 64 << 20}),
])
def test_update_conflicts_with_what_is_stored(change, stored):
    from bocker.runtime import update

    with pytest.raises(InvalidArgument):
        update._conflicts(change, stored)


# ------------------------------------------------------------ --cgroup-parent

@pytest.mark.parametrize("text, want", [
    ("web", "web"), ("web//tier/", "web/tier"), ("/system.slice/x", "/system.slice/x"),
    ("a_b.c@d:e+f-g", "a_b.c@d:e+f-g"),
])
def test_cgroup_parent_forms(text, want):
    assert cgroups.check_parent(text) == want


@given(st.text(max_size=40))
def test_cgroup_parent_never_escapes(text):
    try:
        norm = cgroups.check_parent(text)
    except ValueError:
        return
    parts = norm.strip("/").split("/")
    assert parts and all(p not in ("", ".", "..") for p in parts)
    assert "\n" not in norm and "\0" not in norm


def test_cgroup_parent_placement(monkeypatch):
    monkeypatch.setenv("BOCKER_CGROUP_PARENT", "bk")
    monkeypatch.setattr(cgroups, "_placed", {})
    cgroups.place("ps_1", "web/tier")
    cgroups.place("ps_2", "/abs")
    assert cgroups.group_path("ps_1") == "bk/web/tier/ps_1"
    assert cgroups.group_path("ps_2") == "abs/ps_2"
    assert cgroups.group_path("ps_3") == "bk/ps_3"
    with pytest.raises(ValueError):
        cgroups.place("ps_4", "../up")
