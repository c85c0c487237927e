"""bocker-oci's cgroups against the real kernel (this host: v1 controllers
plus a cgroup2 mount holding hugetlb; a pure v2 host runs the v2 side).

Every group lives under /bocker-oci-test-<pid>/ and is removed by the
test (checked after each one, on top of conftest's leak check)."""
import itertools
import os
import signal
import subprocess

import pytest

from bocker import errors
from bocker.oci import cgroup as ocg

from conftest import wait_for

PARENT = f"/bocker-oci-test-{os.getpid()}"
_n = itertools.count()


def _ours():
    """Every directory of ours left under any cgroup root."""
    return [r + PARENT for r in ocg.detect().roots() if os.path.exists(r + PARENT)]


def _groups(new):
    """A fixture's body: yields make(resources=None, **kw), which creates
    new(**kw) with resources (its warnings kept on it); afterwards every
    group made is destroyed."""
    made = []

    def make(resources=None, **kw):
        cg = new(**kw)
        made.append(cg)
        cg.warnings = cg.create(resources or {})
        return cg

    yield make
    for cg in made:
        cg.destroy()


@pytest.fixture
def group():
    """make(**kw) -> a created OciCgroup with a unique path, destroyed
    (and checked gone) after the test."""
    yield from _groups(lambda path=None: ocg.OciCgroup(path or f"{PARENT}/c{next(_n)}",
                                                       "unused"))
    assert _ours() == []


@pytest.fixture
def sleeper():
    """start() -> a `sleep 30` Popen, killed and reaped after the test."""
    procs = []

    def start():
        p = subprocess.Popen(["sleep", "30"])
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def read(cg, controller, name):
    with open(os.path.join(cg.controller_dirs()[controller], name)) as f:
        return f.read().strip()


def join(cg, pid):
    """Move pid into the group through the handles the shim would get."""
    fds, dir_fd = cg.handles()
    try:
        for fd in fds:
            os.write(fd, str(pid).encode())
        if dir_fd >= 0:
            procs = os.open("cgroup.procs", os.O_WRONLY, dir_fd=dir_fd)
            try:
                os.write(procs, str(pid).encode())
            finally:
                os.close(procs)
    finally:
        for fd in fds + [dir_fd]:
            if fd >= 0:
                os.close(fd)


def state(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("State:"))


def v1():
    return ocg.detect().version == 1


def test_create_applies_limits(group):
    resources = {"memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20},
                 "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
                 "pids": {"limit": 42},
                 "devices": [{"allow": False, "access": "rwm"},
                             {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}]}
    if v1():
        resources["memory"].update(swappiness=7, disableOOMKiller=True)
        resources["cpu"]["idle"] = 0  # 1 would make the shares the minimum
    cg = group(resources)
    assert cg.exists()
    if v1():
        assert read(cg, "memory", "memory.limit_in_bytes") == str(64 << 20)
        if os.path.exists(os.path.join(cg.controller_dirs()["memory"], "memory.memsw.limit_in_bytes")):
            assert read(cg, "memory", "memory.memsw.limit_in_bytes") == str(128 << 20)
        assert read(cg, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
        assert read(cg, "memory", "memory.swappiness") == "7"
        assert "oom_kill_disable 1" in read(cg, "memory", "memory.oom_control")
        assert read(cg, "cpu", "cpu.shares") == "512"
        assert read(cg, "cpu", "cpu.cfs_quota_us") == "50000"
        assert read(cg, "cpu", "cpu.idle") == "0"
        devices = read(cg, "devices", "devices.list").splitlines()
        assert "c 10:229 rw" in devices and "c 1:3 rwm" in devices and "a *:* rwm" not in devices
    else:
        assert read(cg, "memory", "memory.max") == str(64 << 20)
        assert read(cg, "cpu", "cpu.max") == "50000 100000"
        assert any("eBPF" in w for w in cg.warnings)
    assert read(cg, "cpuset", "cpuset.cpus") == "0"
    assert read(cg, "pids", "pids.max") == "42"


def test_hugetlb_where_the_host_has_it(group):
    if not os.path.exists("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2MB huge pages")
    cg = group({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
    dirs = cg.controller_dirs()
    if "hugetlb" not in dirs:
        assert any("hugetlb" in w for w in cg.warnings)
        return
    name = "hugetlb.2MB.limit_in_bytes" if cg.versions()["hugetlb"] == 1 else "hugetlb.2MB.max"
    assert read(cg, "hugetlb", name) == str(4 << 20)


def test_bad_value_the_kernel_refuses_leaves_nothing():
    cg = ocg.OciCgroup(f"{PARENT}/bad{next(_n)}", "x")
    with pytest.raises(errors.InvalidArgument, match="linux.resources.cpu.period"):
        cg.create({"cpu": {"period": 10}})  # below the kernel's 1 ms
    assert not cg.exists() and _ours() == []


def test_bad_type_makes_nothing():
    cg = ocg.OciCgroup(f"{PARENT}/bad{next(_n)}", "x")
    with pytest.raises(errors.InvalidArgument, match="linux.resources.memory.limit: must be an integer"):
        cg.create({"memory": {"limit": "64M"}})
    assert _ours() == []


def test_process_freeze_thaw_pids_kill(group, sleeper):
    cg = group({"pids": {"limit": 10}})
    p = sleeper()
    join(cg, p.pid)
    with open(f"/proc/{p.pid}/cgroup") as f:
        lines = f.read().splitlines()
    # every hierarchy the group is in (not name=systemd, not ours) names it
    ours = [line for line in lines if "name=" not in line]
    assert ours and all(line.split(":", 2)[2] == cg.path for line in ours)
    assert cg.pids() == [p.pid]
    assert not cg.frozen()
    cg.freeze()
    assert cg.frozen()
    if v1():
        assert state(p.pid) == "D"  # the v1 freezer's frozen tasks (v2's stay "S")
    cg.thaw()
    assert not cg.frozen()
    assert wait_for(lambda: state(p.pid) == "S")
    cg.kill_all(signal.SIGTERM)
    assert p.wait(timeout=10) == -signal.SIGTERM
    assert wait_for(lambda: cg.pids() == [])


def test_kill_all_while_paused_keeps_it_paused(group, sleeper):
    cg = group()
    p = sleeper()
    join(cg, p.pid)
    cg.freeze()
    cg.kill_all(signal.SIGTERM)
    assert cg.frozen()  # a paused container stays paused
    cg.thaw()
    assert p.wait(timeout=10) == -signal.SIGTERM


def test_update(group):
    cg = group({"memory": {"limit": 32 << 20, "swap": 32 << 20}, "pids": {"limit": 5}})
    # raising the limit above the old memory+swap needs memsw first: the
    # retry after EINVAL finds that order
    warnings = cg.update({"memory": {"limit": 256 << 20, "swap": 512 << 20}, "pids": {"limit": -1}})
    if v1():
        assert read(cg, "memory", "memory.limit_in_bytes") == str(256 << 20)
    else:
        assert read(cg, "memory", "memory.max") == str(256 << 20)
    assert read(cg, "pids", "pids.max") == "max"
    assert isinstance(warnings, list)
    with pytest.raises(errors.InvalidArgument, match="pids.limit"):
        cg.update({"pids": {"limit": -7}})
    assert read(cg, "pids", "pids.max") == "max"


def test_update_missing_group():
    with pytest.raises(errors.NotFound):
        ocg.OciCgroup(f"{PARENT}/none", "x").update({"pids": {"limit": 3}})


def test_destroy_kills_removes_subgroups_and_is_idempotent(group, sleeper):
    cg = group()
    p = sleeper()
    join(cg, p.pid)
    for d in cg.dirs():  # what a container's own systemd might make
        os.mkdir(os.path.join(d, "inner"))
    cg.freeze()  # destroy must thaw first, or v1 SIGKILL waits forever
    cg.destroy()
    assert p.wait(timeout=10) == -signal.SIGKILL
    assert not cg.exists() and _ours() == []
    cg.destroy()


def test_destroy_keeps_parents_it_did_not_make(group):
    outer = group(path=f"{PARENT}/outer{next(_n)}")
    inner = ocg.OciCgroup(outer.path + "/leaf", "x")
    inner.create({})
    assert inner.made == []  # outer existed: not inner's
    inner.destroy()
    assert outer.exists() and not inner.exists()
    # a later process that only knows the path and what create made
    again = ocg.OciCgroup(outer.path + "/leaf2", "x")
    again.create({})
    ocg.OciCgroup(again.path, "x", made=again.made).destroy()
    assert outer.exists()


def test_made_parents_are_removed_once_empty(group):
    a = ocg.OciCgroup(f"{PARENT}/p{next(_n)}/deep/a", "x")
    a.create({})
    b = ocg.OciCgroup(os.path.dirname(a.path) + "/b", "x")
    b.create({})
    assert f"{PARENT}/" in a.made[-1]
    ocg.OciCgroup(a.path, "x", made=a.made).destroy()
    assert b.exists()  # the shared parent is not empty yet
    ocg.OciCgroup(b.path, "x", made=b.made + a.made).destroy()
    assert _ours() == []


def test_existing_busy_leaf_refused(group, sleeper):
    cg = group()
    p = sleeper()
    join(cg, p.pid)
    other = ocg.OciCgroup(cg.path, "x")
    with pytest.raises(errors.InvalidArgument, match="in use"):
        other.create({})
    other.destroy()  # a runtime's undo after the refusal: not its group to kill
    assert cg.pids() == [p.pid] and p.poll() is None


def test_mounts_name_existing_groups(group):
    cg = group()
    ms = cg.mounts("/sys/fs/cgroup", ocg.MS_RDONLY)
    binds = [m for m in ms if m.fstype is None]
    assert binds and all(os.path.isdir(m.source) for m in binds)
    assert sorted(m.source for m in binds) == sorted(cg.dirs())


# ---------------------------------------------- the v2 code on a real cgroup2
#
# This host's containers use v1; its cgroup2 mount (hugetlb only) still
# runs every v2 path: cgroup.procs, cgroup.freeze/events, cgroup.kill,
# subtree_control, unified files.

@pytest.fixture
def v2group():
    point = next((p for p, fstype, _ in ocg.cgroups.read_mounts() if fstype == "cgroup2"), None)
    if point is None:
        pytest.skip("no cgroup2 mount")
    layout = ocg.Layout(2, v2=point)
    yield from _groups(lambda: ocg.OciCgroup(f"{PARENT}/v2-{next(_n)}", "x", layout=layout))
    assert not os.path.exists(point + PARENT)


def test_v2_unified_files_and_hugetlb(v2group):
    resources = {"unified": {"cgroup.max.descendants": "3"}, "pids": {"limit": 5}}
    cg = v2group(resources)
    d = cg.dirs()[0]
    with open(os.path.join(d, "cgroup.max.descendants")) as f:
        assert f.read().strip() == "3"
    if "pids" not in ocg._controllers(d):
        assert any("pids" in w for w in cg.warnings)
    if "hugetlb" in ocg._controllers(d) and os.path.exists(os.path.join(d, "hugetlb.2MB.max")):
        cg.update({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}]})
        with open(os.path.join(d, "hugetlb.2MB.max")) as f:
            assert f.read().strip() == str(2 << 20)
    with pytest.raises(errors.InvalidArgument, match="unified.memory.nonesuch"):
        cg.update({"unified": {"memory.nonesuch": "1"}})
    with pytest.raises(errors.InvalidArgument, match="unified.cgroup.procs"):
        cg.update({"unified": {"cgroup.procs": "1"}})


def test_v2_process_freeze_kill(v2group, sleeper):
    cg = v2group()
    p = sleeper()
    join(cg, p.pid)
    with open(f"/proc/{p.pid}/cgroup") as f:
        assert f"0::{cg.path}" in f.read().splitlines()
    assert cg.pids() == [p.pid]
    cg.freeze()
    assert cg.frozen()
    cg.thaw()
    assert not cg.frozen()
    cg.kill_all()  # cgroup.kill
    assert p.wait(timeout=10) == -signal.SIGKILL
    [m] = cg.mounts("/sys/fs/cgroup", 0)
    assert m.fstype is None and os.path.samefile(m.source, cg.dirs()[0])


def run_in(cg, argv):
    """Run argv to its end inside the group, joined before exec as the
    shim's child joins: it writes "0" into each handle."""
    fds, dir_fd = cg.handles()

    def enter():
        for fd in fds:
            os.write(fd, b"0")
        if dir_fd >= 0:
            os.write(os.open("cgroup.procs", os.O_WRONLY, dir_fd=dir_fd), b"0")

    try:
        return subprocess.run(argv, preexec_fn=enter, pass_fds=fds + [dir_fd] * (dir_fd >= 0),
                              capture_output=True, text=True, timeout=30)
    finally:
        for fd in fds + [dir_fd]:
            if fd >= 0:
                os.close(fd)


OPENS = """
import os, sys
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        print(path, "ok")
    except OSError as e:
        print(path, e.errno)
"""


def test_devices_rules_are_enforced(group):
    if not v1():
        pytest.skip("v2 device rules need eBPF (not applied)")
    cg = group({"devices": [{"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    out = run_in(cg, ["/opt/bocker/venv/bin/python", "-c", OPENS,
                      "/dev/null", "/dev/kmsg", "/dev/loop-control"]).stdout
    # /dev/null: runc's defaults; /dev/kmsg (1:11): the config's rule;
    # /dev/loop-control (10:237): denied with everything else (EPERM)
    assert out.split("\n")[:3] == ["/dev/null ok", "/dev/kmsg ok", "/dev/loop-control 1"]


def test_realtime_runtime_refused_cleanly():
    if not v1() or not os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):
        pytest.skip("no v1 RT group scheduling")
    cg = ocg.OciCgroup(f"{PARENT}/rt{next(_n)}", "x")
    # a new group's parent has no RT time to give (0): the kernel refuses
    with pytest.raises(errors.InvalidArgument, match="linux.resources.cpu.realtimeRuntime"):
        cg.create({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 100000}})
    assert _ours() == []
