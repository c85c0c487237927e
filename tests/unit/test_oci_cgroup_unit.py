"""bocker-oci's cgroup path rules, linux.resources checks and conversions,
and the file writes against temporary trees (no root)."""
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bocker.errors import InvalidArgument
from bocker.kernel import cgroups
from bocker.oci import cgroup as ocg
from bocker.oci import resources as res

V1 = {c: 1 for c in ("cpu", "cpuacct", "memory", "pids", "cpuset", "freezer", "devices", "blkio")}
V2 = {c: 2 for c in ("cpu", "cpuset", "io", "memory", "pids", "hugetlb", "devices", "unified")}


# ------------------------------------------------------------ path rules

@pytest.mark.parametrize("given_path, expected", [
    (None, "/bocker-oci/abc"),
    ("", "/bocker-oci/abc"),
    ("/libpod_parent/libpod-abc", "/libpod_parent/libpod-abc"),
    ("/default/abc", "/default/abc"),
    ("mine/abc", "/bocker-oci/mine/abc"),
    ("machine.slice:libpod:abc", "/bocker-oci/machine.slice:libpod:abc"),
    ("//a//./b/", "/a/b"),
])
def test_group_path(given_path, expected):
    assert ocg.group_path(given_path, "abc") == expected


@pytest.mark.parametrize("bad", ["/a/../b", "..", "a\0b", "/a\nb", "/", "///", 7,
                                 "/" + "x" * 256, "/a" * 40, ("/" + "y" * 200) * 6])
def test_group_path_refused(bad):
    with pytest.raises(InvalidArgument, match="linux.cgroupsPath"):
        ocg.group_path(bad, "abc")


@pytest.mark.parametrize("cid", ["", "..", "a/b", "x\0", None])
def test_default_path_needs_a_plain_id(cid):
    with pytest.raises(InvalidArgument):
        ocg.group_path(None, cid)


_name = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(st.lists(_name, min_size=1, max_size=8), st.booleans())
def test_group_path_property(names, absolute):
    """Whatever is accepted is an absolute path of plain names, under ROOT
    unless given absolute, never escaping with '..'."""
    raw = ("/" if absolute else "") + "/".join(names)
    try:
        path = ocg.group_path(raw, "id")
    except InvalidArgument:
        return
    parts = path.split("/")
    assert parts[0] == "" and all(parts[1:])
    assert ".." not in parts and "." not in parts
    assert not any(ord(c) < 0x20 or ord(c) == 0x7f for c in path)
    assert len(path.encode()) <= ocg.MAX_PATH
    if not raw.startswith("/"):  # a name may hold "/" itself
        assert path.startswith(ocg.ROOT + "/")


@given(st.text(string.printable, max_size=300))
def test_group_path_never_crashes(raw):
    try:
        path = ocg.group_path(raw, "id")
    except InvalidArgument:
        return
    assert os.path.normpath(path) == path


# ------------------------------------------------ resources: conversions

def files(plan):
    return [(w.controller, w.file, w.value) for w in plan.writes]


def test_memory_v1():
    p = res.plan({"memory": {"limit": 1 << 28, "swap": 1 << 29, "reservation": 1 << 27,
                             "swappiness": 0, "disableOOMKiller": True}}, V1, create=False)
    assert files(p) == [
        ("memory", "memory.limit_in_bytes", str(1 << 28)),
        ("memory", "memory.memsw.limit_in_bytes", str(1 << 29)),
        ("memory", "memory.soft_limit_in_bytes", str(1 << 27)),
        ("memory", "memory.swappiness", "0"),
        ("memory", "memory.oom_control", "1")]
    assert p.warnings == []


def test_memory_v2():
    p = res.plan({"memory": {"limit": 1 << 28, "swap": 1 << 29, "reservation": -1,
                             "swappiness": 10, "disableOOMKiller": True}}, V2, create=False)
    assert files(p) == [("memory", "memory.max", str(1 << 28)),
                        ("memory", "memory.swap.max", str(1 << 28)),
                        ("memory", "memory.low", "max")]
    assert len(p.warnings) == 2 and all("not applied" in w for w in p.warnings)


@pytest.mark.parametrize("swap, limit, expected", [
    (-1, 100, "max"), (300, 100, 200), (100, 100, 0), (500, -1, 500)])
def test_v2_swap(swap, limit, expected):
    assert res.v2_swap(swap, limit) == expected


@pytest.mark.parametrize("swap, limit", [(100, None), (50, 100)])
def test_v2_swap_refused(swap, limit):
    with pytest.raises(InvalidArgument, match="memory.swap"):
        res.v2_swap(swap, limit)


def test_cpu_v1_and_v2():
    cpu = {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0",
           "realtimeRuntime": 1000, "realtimePeriod": 10000, "idle": 1}
    v1 = files(res.plan({"cpu": cpu}, V1, create=False))
    assert ("cpu", "cpu.shares", "1024") in v1
    assert v1.index(("cpu", "cpu.cfs_period_us", "100000")) < v1.index(("cpu", "cpu.cfs_quota_us", "50000"))
    assert ("cpu", "cpu.rt_runtime_us", "1000") in v1 and ("cpu", "cpu.idle", "1") in v1
    assert ("cpuset", "cpuset.cpus", "0-1") in v1 and ("cpuset", "cpuset.mems", "0") in v1
    p2 = res.plan({"cpu": cpu}, V2, create=False)
    v2 = files(p2)
    assert ("cpu", "cpu.weight", str(cgroups.shares_to_weight(1024))) in v2
    assert ("cpu", "cpu.max", "50000 100000") in v2
    assert not any("rt_" in f for _, f, _ in v2)
    assert sum("realtime" in w for w in p2.warnings) == 2


@pytest.mark.parametrize("quota, period, expected", [
    (-1, 100000, "max 100000"), (20000, 0, "20000"), (0, 50000, "max 50000")])
def test_cpu_max(quota, period, expected):
    assert res.cpu_max(quota, period) == expected


@pytest.mark.parametrize("limit, expected", [(0, "max"), (-1, "max"), (64, "64")])
def test_pids(limit, expected):
    assert files(res.plan({"pids": {"limit": limit}}, V1, create=False)) == [
        ("pids", "pids.max", expected)]


def test_hugepages_go_where_hugetlb_is():
    hp = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}
    hybrid = dict(V1, hugetlb=2)
    assert files(res.plan(hp, hybrid, create=False))[0] == ("hugetlb", "hugetlb.2MB.max", str(4 << 20))
    assert files(res.plan(hp, dict(V1, hugetlb=1), create=False))[0] == (
        "hugetlb", "hugetlb.2MB.limit_in_bytes", str(4 << 20))
    p = res.plan(hp, V1, create=False)
    assert p.writes == [] and "no hugetlb" in p.warnings[0]


def test_devices_v1_deny_all_then_rules_then_defaults():
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
             {"allow": False, "type": "b", "major": 8, "access": "m"}]
    got = [(w.file, w.value) for w in res.plan({"devices": rules}, V1, create=False).writes]
    assert got[:4] == [("devices.deny", "a"), ("devices.deny", "a"),
                       ("devices.allow", "c 10:229 rw"), ("devices.deny", "b 8:* m")]
    assert [v for _, v in got[4:]] == list(res.DEFAULT_DEVICE_RULES)


def test_devices_v2_warns():
    p = res.plan({"devices": [{"allow": False, "access": "rwm"}]}, V2, create=True)
    assert p.writes == []
    assert p.warnings == ["linux.resources.devices not applied: cgroup v2 device control needs eBPF"]
    assert res.plan({}, V2, create=True).warnings == []


def test_devices_always_set_up_on_v1_create():
    assert res.plan({}, V1, create=True).writes[0].file == "devices.deny"
    assert res.plan({}, V1, create=False).writes == []


def test_blockio_and_network():
    p = res.plan({"blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
                  "network": {"classID": 7, "priorities": [{"name": "eth0", "priority": 3}]}},
                 dict(V1, net_cls=1, net_prio=1), create=False)
    assert files(p) == [("blkio", ("blkio.weight", "blkio.bfq.weight"), "300"),
                        ("blkio", "blkio.throttle.read_bps_device", "8:0 1000"),
                        ("net_cls", "net_cls.classid", "7"),
                        ("net_prio", "net_prio.ifpriomap", "eth0 3")]
    p2 = res.plan({"blockIO": {"weight": 300}, "network": {"classID": 7}}, V2, create=False)
    assert files(p2) == [("io", ("io.weight", "io.bfq.weight"), "300")]
    assert len(p2.warnings) == 1


def test_unified_only_on_v2():
    assert files(res.plan({"unified": {"memory.high": "100M"}}, V2, create=False)) == [
        ("unified", "memory.high", "100M")]
    p = res.plan({"unified": {"memory.high": "100M"}}, V1, create=False)
    assert p.writes == [] and p.warnings


def test_unknown_fields_warn():
    p = res.plan({"rdma": {}, "memory": {"kernel": 5, "oddity": 1}}, V1, create=False)
    assert sorted(p.warnings) == sorted([
        "linux.resources.rdma not applied: not supported by bocker-oci",
        "linux.resources.memory.kernel not applied: kernel memory limits are deprecated",
        "linux.resources.memory.oddity not applied: unknown field"])


@pytest.mark.parametrize("resources, field", [
    ({"memory": {"limit": "1G"}}, "linux.resources.memory.limit: must be an integer"),
    ({"memory": {"limit": True}}, "linux.resources.memory.limit: must be an integer"),
    ({"memory": {"limit": -2}}, "linux.resources.memory.limit"),
    ({"memory": {"limit": 200, "swap": 100}}, "linux.resources.memory.swap"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
    ({"memory": {"disableOOMKiller": 1}}, "linux.resources.memory.disableOOMKiller"),
    ({"memory": []}, "linux.resources.memory: must be an object"),
    ({"cpu": {"shares": -1}}, "linux.resources.cpu.shares"),
    ({"cpu": {"quota": -5}}, "linux.resources.cpu.quota"),
    ({"cpu": {"cpus": "0-a"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"idle": 2}}, "linux.resources.cpu.idle"),
    ({"pids": {"limit": -2}}, "linux.resources.pids.limit"),
    ({"pids": {"limit": 1 << 64}}, "linux.resources.pids.limit"),
    ({"hugepageLimits": [{"pageSize": "2MB/../x", "limit": 1}]}, r"hugepageLimits\[0\].pageSize"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": -1}]}, r"hugepageLimits\[0\].limit"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
    ({"devices": [{"allow": "yes"}]}, r"devices\[0\].allow"),
    ({"devices": [{"allow": True, "type": "x"}]}, r"devices\[0\].type"),
    ({"devices": [{"allow": True, "access": "rwx"}]}, r"devices\[0\].access"),
    ({"devices": [{"allow": True, "major": -3}]}, r"devices\[0\].major"),
    ({"network": {"classID": -1}}, "linux.resources.network.classID"),
    ({"network": {"priorities": [{"name": "a b", "priority": 1}]}}, r"priorities\[0\].name"),
    ({"unified": {"../x": "1"}}, "linux.resources.unified"),
    ({"unified": {"cgroup.procs": "1"}}, "linux.resources.unified.cgroup.procs"),
    ({"unified": {"memory.high": 5}}, "linux.resources.unified.memory.high: must be a string"),
    ([], "linux.resources: must be an object"),
])
def test_bad_values(resources, field):
    for versions in (V1, V2):
        with pytest.raises(InvalidArgument, match=field) as e:
            res.plan(resources, versions)
        assert "\n" not in str(e.value)


@given(st.integers(min_value=-(1 << 70), max_value=1 << 70))
def test_pids_limit_any_integer(n):
    try:
        p = res.plan({"pids": {"limit": n}}, V2, create=False)
    except InvalidArgument as e:
        assert n < -1 or n > res.INT64_MAX
        assert str(e).startswith("linux.resources.pids.limit:")
        return
    assert p.writes[0].value == ("max" if n <= 0 else str(n))


# ------------------------------------------- against a temporary v1 tree

def fake_v1(tmp_path, controllers=("memory", "pids", "cpuset", "freezer")):
    """A pretend v1 host: one 'mount' per controller, with the leaf's
    files made in advance (a tmpfs makes none on mkdir)."""
    hier = {}
    for c in controllers:
        (tmp_path / c).mkdir()
        hier[c] = str(tmp_path / c)
    if "cpuset" in hier:
        (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-3\n")
        (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    return ocg.Layout(1, hier)


def test_create_update_destroy_fake_v1(tmp_path):
    lay = fake_v1(tmp_path)
    cg = ocg.OciCgroup("/bocker-oci-unit/c1", "c1", layout=lay)
    # pre-make the leaf's interface files as the kernel would
    for c, names in {"memory": ["memory.limit_in_bytes", "cgroup.procs"],
                     "pids": ["pids.max", "cgroup.procs"],
                     "cpuset": ["cpuset.cpus", "cpuset.mems", "cgroup.procs"],
                     "freezer": ["cgroup.procs"]}.items():
        for level in ("bocker-oci-unit", "bocker-oci-unit/c1"):
            d = tmp_path / c / level
            d.mkdir(parents=True, exist_ok=True)
            for n in names:
                (d / n).write_text("")
    warnings = cg.create({"memory": {"limit": 4096, "swap": 8192}, "pids": {"limit": 5}})
    leaf = lambda c, n: (tmp_path / c / "bocker-oci-unit/c1" / n).read_text()  # noqa: E731
    assert leaf("memory", "memory.limit_in_bytes") == "4096"
    assert leaf("pids", "pids.max") == "5"
    assert leaf("cpuset", "cpuset.cpus") == "0-3"  # copied down from the root
    assert any("memory.swap not applied" in w for w in warnings)  # no memsw file
    assert not any("devices" in w for w in warnings)  # no devices controller, no rules
    cg.update({"pids": {"limit": 0}})
    assert leaf("pids", "pids.max") == "max"


def test_existing_leaf_with_processes_refused(tmp_path):
    lay = fake_v1(tmp_path, ("pids",))
    d = tmp_path / "pids" / "grp" / "c2"
    d.mkdir(parents=True)
    (d / "cgroup.procs").write_text("1\n")
    with pytest.raises(InvalidArgument, match="in use"):
        ocg.OciCgroup("/grp/c2", "c2", layout=lay).create({})


def test_bad_values_make_nothing(tmp_path):
    lay = fake_v1(tmp_path, ("pids",))
    with pytest.raises(InvalidArgument):
        ocg.OciCgroup(None, "c3", layout=lay).create({"pids": {"limit": "x"}})
    assert os.listdir(tmp_path / "pids") == []


def test_handles_and_mounts_fake(tmp_path):
    lay = fake_v1(tmp_path, ("pids", "memory"))
    lay.side = str(tmp_path / "unified")
    cg = ocg.OciCgroup("/x/c4", "c4", layout=lay)
    for root in lay.roots():
        os.makedirs(root + "/x/c4")
        open(root + "/x/c4/tasks", "w").close()
    fds, dir_fd = cg.handles()
    try:
        assert len(fds) == 2 and dir_fd >= 0
        assert os.path.samefile(f"/proc/self/fd/{dir_fd}", lay.side + "/x/c4")
    finally:
        for fd in fds + [dir_fd]:
            os.close(fd)
    ms = cg.mounts("/sys/fs/cgroup", ocg.MS_RDONLY)
    assert (ms[0].fstype, ms[0].target) == ("tmpfs", "/sys/fs/cgroup")
    binds = {m.target: m.source for m in ms if m.fstype is None}
    assert binds == {"/sys/fs/cgroup/pids": lay.hierarchies["pids"] + "/x/c4",
                     "/sys/fs/cgroup/memory": lay.hierarchies["memory"] + "/x/c4",
                     "/sys/fs/cgroup/unified": lay.side + "/x/c4"}
    assert all(m.flags & ocg.MS_RDONLY for m in ms if m.fstype is None)
    assert ms[-1].flags & ocg.MS_REMOUNT and ms[-1].flags & ocg.MS_RDONLY


def test_mounts_v2():
    cg = ocg.OciCgroup(None, "c5", layout=ocg.Layout(2, v2="/sys/fs/cgroup"))
    [m] = cg.mounts("/sys/fs/cgroup", ocg.MS_RDONLY)
    assert (m.source, m.target, m.fstype) == ("/sys/fs/cgroup/bocker-oci/c5", "/sys/fs/cgroup", None)
    assert m.flags & ocg.MS_RDONLY and m.flags & ocg.MS_NOSUID


def test_detect(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("hugetlb\n")
    lay = ocg.detect([("/c/memory", "cgroup", "rw,memory"), ("/c/freezer", "cgroup", "rw,freezer"),
                      ("/c/systemd", "cgroup", "rw,name=systemd"), (str(tmp_path), "cgroup2", "rw")])
    assert lay.version == 1 and lay.side == str(tmp_path)
    assert lay.hierarchies == {"memory": "/c/memory", "freezer": "/c/freezer"}
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids io\n")
    lay = ocg.detect([("/c/memory", "cgroup", "rw,memory"), (str(tmp_path), "cgroup2", "rw")])
    assert lay.version == 2 and lay.v2 == str(tmp_path)


def test_destroy_removes_empty_root_levels_only(tmp_path):
    lay = fake_v1(tmp_path, ("pids",))
    a = ocg.OciCgroup(None, "a", layout=lay)
    b = ocg.OciCgroup("/theirs/b", "b", layout=lay)
    a.create({})
    b.create({})
    assert a.made == ["/bocker-oci"] and b.made == ["/theirs"]
    ocg.OciCgroup(None, "a", layout=lay).destroy()  # made unknown: ROOT is ours anyway
    ocg.OciCgroup("/theirs/b", "b", layout=lay).destroy()  # made unknown: /theirs stays
    assert os.listdir(tmp_path / "pids") == ["theirs"]


def test_create_walks_down_again_when_a_parent_vanishes(tmp_path, monkeypatch):
    lay = fake_v1(tmp_path, ("pids",))
    real, calls = os.mkdir, []

    def mkdir(path, mode=0o777):
        calls.append(path)
        if path.endswith("/leaf") and len(calls) == 2:
            os.rmdir(os.path.dirname(path))  # another container's destroy
            raise FileNotFoundError(path)
        real(path, mode)

    monkeypatch.setattr(ocg.os, "mkdir", mkdir)
    cg = ocg.OciCgroup("/p/leaf", "x", layout=lay)
    cg.create({})
    assert os.path.isdir(tmp_path / "pids" / "p" / "leaf") and len(calls) == 4


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 65), 1 << 65) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6)
_keys = st.sampled_from(["memory", "cpu", "pids", "hugepageLimits", "blockIO", "devices",
                         "network", "unified", "rdma"])
_fields = st.sampled_from(["limit", "swap", "reservation", "swappiness", "disableOOMKiller",
                           "shares", "quota", "period", "cpus", "mems", "idle", "weight",
                           "pageSize", "allow", "type", "major", "minor", "access", "classID",
                           "priorities", "name", "priority", "throttleReadBpsDevice", "rate"])
_section = st.dictionaries(_fields, _json, max_size=4) | st.lists(
    st.dictionaries(_fields, _json, max_size=4), max_size=2) | _json


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(_keys, _section, max_size=4), st.sampled_from([V1, V2, {}]), st.booleans())
def test_plan_only_ever_refuses_with_one_line(resources, versions, create):
    """Hostile linux.resources: a Plan or one InvalidArgument line, never
    another exception; every write names a file without '/'."""
    try:
        p = res.plan(resources, versions, create=create)
    except InvalidArgument as e:
        assert "\n" not in str(e) and str(e).startswith("linux.resources")
        return
    for w in p.writes:
        for name in (w.file if isinstance(w.file, tuple) else (w.file,)):
            assert "/" not in name and name not in res.UNIFIED_REFUSED
        assert "\0" not in w.value
